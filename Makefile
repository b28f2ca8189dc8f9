# Two commands, both from a fresh clone (scripts/bootstrap installs what is missing):
#   make demo   serve examples/hello under Apache + mod_wsgi daemon mode (PORT=8080 to choose)
#   make test   the whole test suite, real Apache included, then ruff and mypy
PY := .venv/bin/python
LINTED := reloadmw tests examples scripts benchmarks

.PHONY: demo test

demo:
	bash scripts/bootstrap
	$(PY) scripts/demo.py

test:
	bash scripts/bootstrap
	$(PY) -m pytest
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/mypy --strict reloadmw
	.venv/bin/lint-imports
