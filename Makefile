# jifang — the two commands a newcomer needs: `make demo` and `make test`.
# Everything is installed by this file: a .venv from pyproject.toml (PyPI), and the
# Debian packages the tests need (tools/install-system-deps.sh), nothing by hand.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo install system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash tools/install-system-deps.sh

# The whole suite: CPython tests, the MicroPython-side tests on the real `micropython`
# binary, and an mpy-cross compile of every module that runs on a device.
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/jifang demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) bench/codecs.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
