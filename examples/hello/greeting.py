"""Edit TEXT and reload the page: the daemon processes restart with the new text."""

TEXT = "Hello from reloadmw! Edit examples/hello/greeting.py and reload this page."
