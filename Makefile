# Two commands, both from a fresh clone (scripts/bootstrap installs what is missing):
#   make demo   serve examples/hello under Apache + mod_wsgi daemon mode (PORT=8080 to choose)
#   make test   the whole test suite, real Apache included, again with the Python request
#               gate, then ruff and mypy
PY := .venv/bin/python
LINTED := reloadmw tests examples scripts benchmarks

.PHONY: demo test

demo:
	bash scripts/bootstrap
	$(PY) scripts/demo.py

test:
	bash scripts/bootstrap
	$(PY) -m pytest
	RELOADMW_PURE_PYTHON=1 $(PY) -m pytest -m "not server" -p no:cacheprovider
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/mypy --strict reloadmw
