# Two commands, both from a fresh clone (scripts/bootstrap installs what is missing):
#   make demo   serve examples/hello under Apache + mod_wsgi daemon mode (PORT=8080 to choose)
#   make test   the whole test suite, real Apache included, again with the Python request
#               gate, the docs, then ruff and mypy
# Releasing (CONTRIBUTING.rst):
#   make dist   sdist, platform and manylinux wheels, py3-none-any wheel into dist/, checked
#   make docs   the Sphinx site into docs/_build/html; warnings and unresolved references fail
# and, where Python 3.9 to 3.13 are installed (pyenv's ~/.pyenv/versions, or on PATH):
#   make matrix the in-process suite under each of them (tox envs py39 ... py313)
PY := .venv/bin/python
LINTED := reloadmw tests examples scripts benchmarks docs
PYTHONS := 3.9 3.10 3.11 3.12 3.13
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions

DOCS_OUT := docs/_build

.PHONY: demo test matrix dist docs

demo:
	bash scripts/bootstrap
	$(PY) scripts/demo.py

test:
	bash scripts/bootstrap
	$(PY) -m pytest
	RELOADMW_PURE_PYTHON=1 $(PY) -m pytest -m "not server and not dist" -p no:cacheprovider
	$(MAKE) docs
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/mypy --strict reloadmw
	.venv/bin/lint-imports

# tox finds python3.X on PATH: pyenv's bin directories go first, whatever their patch level.
matrix:
	bash scripts/bootstrap
	$(PY) -m pip show tox >/dev/null 2>&1 \
		|| $(PY) -m pip install --quiet --disable-pip-version-check 'tox>=4'
	envs=; path=; for version in $(PYTHONS); do \
		envs="$$envs$${envs:+,}py$$(echo $$version | tr -d .)"; \
		for bin in $(PYENV_VERSIONS)/$$version.*/bin; do \
			if [ -x "$$bin/python$$version" ]; then path="$$path$$bin:"; fi; \
		done; \
	done; \
	PATH="$$path$$PATH" .venv/bin/tox run -e "$$envs"

dist:
	bash scripts/bootstrap
	$(PY) scripts/dist.py --outdir dist

# -W: warnings are errors; -n (nitpicky): so is every reference that does not resolve,
# which is how internal links are checked (linkcheck would need the internet).
# tox -e docs runs this target with its own Python and output directory.
docs:
	$(PY) -m sphinx -W -n --keep-going -q -b html docs $(DOCS_OUT)/html
