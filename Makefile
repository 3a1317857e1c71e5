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

demo: $(STAMP)
	$(BIN)/specproc run pipelines/libh4_linbh.yaml --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q

bench: $(STAMP)
	$(call install,-e ".[bench]")
	$(BIN)/python benchmarks/run_all.py

sample-data: $(STAMP)
	$(BIN)/python sample_data/generate.py

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info
