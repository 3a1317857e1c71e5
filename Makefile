# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= demo_output
JOBS ?= 2

.PHONY: install demo test bench clean sample-data

# Installs with uv (taken from the package registry itself: `pip install uv`) when it works: it
# downloads and unpacks in parallel, several times faster than pip on a fresh machine. Anything
# that goes wrong on that path (uv not installable, a resolution or network error, a package only
# pip's configured indexes have) falls back to the same install with pip, so the result never
# depends on uv. uv ignores pip's configuration: SSL_CERT_FILE points it at the certificates pip
# is told to use (PIP_CERT), when set; UV_LINK_MODE=copy because its cache may be on another
# file system than the venv. $(call install,ARGS) installs ARGS into the venv.
define install
	( $(BIN)/python -m pip install -q uv \
	   && $(if $(PIP_CERT),SSL_CERT_FILE=$(PIP_CERT)) UV_LINK_MODE=copy \
	      $(BIN)/python -m uv pip install -q --python $(BIN)/python $(1) ) \
	|| { echo "uv unavailable or failed: installing with pip" >&2; \
	     $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q $(1); }
endef

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(call install,-e ".[test]")
	touch $(STAMP)

install: $(STAMP)

# Bytecode is written (PYTHONDONTWRITEBYTECODE emptied for these commands): uv, unlike pip,
# installs no .pyc, and where PYTHONDONTWRITEBYTECODE is set nothing writes them later, so every
# Python process compiled scipy, pandas, xarray... again from source: importing the pipeline stack
# took 7.7 s of CPU instead of 2.7 s, and the test suite starts ~50 processes (xdist workers,
# commands under test, kernels). Written by the first process that imports a module, the .pyc
# serve all later ones; only what is imported gets compiled (uv --compile-bytecode compiles all
# 16,000 files of the venv: 51 s of CPU, more than it saves the demo). docs/testing.md
WRITE_PYC := PYTHONDONTWRITEBYTECODE=

demo: $(STAMP)
	$(WRITE_PYC) $(BIN)/specproc run pipelines/libh4_linbh.yaml --out $(OUT)

test: $(STAMP)
	$(WRITE_PYC) $(BIN)/python -m pytest -n $(JOBS) -q

bench: $(STAMP)
	$(call install,-e ".[bench]")
	$(BIN)/python benchmarks/run_all.py

sample-data: $(STAMP)
	$(BIN)/python sample_data/generate.py

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info
