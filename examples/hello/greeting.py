"""Edit TEXT and save: the open page shows the new text, with no click."""

TEXT = "Hello from reloadmw! Edit examples/hello/greeting.py and watch the page change."
