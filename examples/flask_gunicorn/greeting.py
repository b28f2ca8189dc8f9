TEXT = "Hello from Flask under gunicorn"
