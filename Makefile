# Two commands, both from a fresh clone (scripts/bootstrap installs what is missing):
#   make demo   serve examples/hello under Apache + mod_wsgi daemon mode (PORT=8080 to choose)
#   make test   the whole test suite, real Apache included, then ruff and mypy
PY := .venv/bin/python

.PHONY: demo test

demo:
	bash scripts/bootstrap
	$(PY) scripts/demo.py

test:
	bash scripts/bootstrap
	$(PY) -m pytest
	.venv/bin/ruff check reloadmw tests examples scripts
	.venv/bin/mypy --strict reloadmw
