# `make demo` and `make test` set up everything that is missing (Debian's ngspice, a .venv, zoaf with its
# extras; torch pinned to the CPU build by constraints.txt), then run. Both are quick when already set up.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.zoaf-installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EXTRAS  := bo,dask,peers,sky130,test

.PHONY: demo test setup system bench clean

demo: setup
	$(VENV)/bin/zoaf optimize netlists/two_stage_amp.cir

# Two processes, each test file in one of them (its module fixtures and files made once): about half the wall time
# of one process on two cores. `.venv/bin/python -m pytest -q` runs it in one.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

setup: system $(STAMP)

# ngspice (batch binary) and libngspice.so (from the -dev package, which PySpice loads).
system:
	@if ! command -v ngspice >/dev/null || ! ldconfig -p | grep -q 'libngspice\.so '; then \
	  echo "installing ngspice, libngspice0, libngspice0-dev"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ngspice libngspice0 libngspice0-dev; \
	fi

$(STAMP): pyproject.toml constraints.txt
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

bench: setup
	$(PY) benchmarks/eval_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
