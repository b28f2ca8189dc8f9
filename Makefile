# Two commands, both from a fresh clone (scripts/bootstrap installs what is missing):
#   make demo   serve examples/hello under Apache + mod_wsgi daemon mode (PORT=8080 to choose)
#   make test   the whole test suite, real Apache included, again with the Python request
#               gate, then ruff and mypy
# Releasing (CONTRIBUTING.rst):
#   make dist   sdist, platform and manylinux wheels, py3-none-any wheel into dist/, checked
# and, where Python 3.9 to 3.13 are installed (pyenv's ~/.pyenv/versions, or on PATH):
#   make matrix the in-process suite under each of them (tox envs py39 ... py313)
PY := .venv/bin/python
LINTED := reloadmw tests examples scripts benchmarks
PYTHONS := 3.9 3.10 3.11 3.12 3.13
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions

.PHONY: demo test matrix dist

demo:
	bash scripts/bootstrap
	$(PY) scripts/demo.py

test:
	bash scripts/bootstrap
	$(PY) -m pytest
	RELOADMW_PURE_PYTHON=1 $(PY) -m pytest -m "not server and not dist" -p no:cacheprovider
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
