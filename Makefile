# Quick start: `make demo` runs the main job, `make test` runs the tests, `make test-fast` the quick tier.
# All of them install what is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := ffmpeg libimage-exiftool-perl mediainfo postgresql espeak-ng sox poppler-utils chromium chromium-driver
# commands each Debian package provides, to decide whether apt-get has anything to do
APT_PROBES := ffmpeg exiftool mediainfo pg_ctlcluster espeak-ng sox pdftoppm chromium chromedriver

export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast lint bench system-deps venv clean

demo: venv
	$(PY) -m tamperscope.demo

# CI (.ci/run): lint, types, then every test with the 15 slowest printed
test: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/pytest --durations=15

# the quick loop: everything not marked slow (end-to-end analyses, the browser, training); under 3 minutes on 2 cores
test-fast: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/pytest -m "not slow" --durations=15

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

bench: venv
	for b in bench/*.py; do $(PY) $$b || exit 1; done

system-deps:
	@missing=0; for c in $(APT_PROBES); do command -v $$c >/dev/null || missing=1; done; \
	[ -d /usr/lib/postgresql ] || missing=1; \
	python3 -c 'import ensurepip, venv' 2>/dev/null || missing=1; \
	if [ $$missing = 1 ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) python3-venv >/dev/null; \
	fi

venv: system-deps $(STAMP)

$(STAMP): pyproject.toml requirements-runtime-extra.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,train,s3]'
	$(PIP) install -q --no-deps -r requirements-runtime-extra.txt
	@# nothing may leave a second OpenCV (5.x) shadowing opencv-python-headless 4.x
	if $(PIP) show -q opencv-python 2>/dev/null; then $(PIP) uninstall -q -y opencv-python && $(PIP) install -q --force-reinstall --no-deps 'opencv-python-headless>=4.10,<5'; fi
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
