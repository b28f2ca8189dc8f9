"""Minimal settings for the reloadmw Django example (no database)."""

from __future__ import annotations

from pathlib import Path

SECRET_KEY = "reloadmw-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
# Edit templates/banner.html and reload: the same processes render it (no restart).
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent.parent / "templates"],
    }
]
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"reloadmw": {"handlers": ["console"], "level": "INFO"}},
}
