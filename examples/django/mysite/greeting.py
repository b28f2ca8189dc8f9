TEXT = "Hello from Django"
