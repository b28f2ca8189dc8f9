"""A minimal Django project for the docs' snippets (``mysite.settings``)."""

SECRET_KEY = "only-for-the-docs-snippets"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
