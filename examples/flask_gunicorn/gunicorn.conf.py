"""gunicorn settings for the example: ``gunicorn app:app`` reads this file."""

bind = "127.0.0.1:8000"
workers = 2
worker_class = "gthread"
threads = 4
# Old workers get this long to finish their requests after a reload.
graceful_timeout = 10
# No --preload: the app must be imported by each worker for SIGHUP to load new code.
preload_app = False
