# Two commands for users (README): `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean powerloss golden docs-images

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(PY) -m simulator demo --out demo-out

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright -p pyrightconfig.json

bench: $(STAMP)
	$(PY) bench/run.py

# The store's exhaustive sweeps (make test runs bounded ones): a power cut at every flash
# operation of every store workload, clean and torn, and a second cut at every operation
# of every recovery; a transient device error (raised and returned) at every block device
# call, or one call in k where a workload makes more than 5000. Takes about 20 minutes
# on two cores. Then a visit with a device error at every flash access (about 10 minutes;
# make test fails every write and every 64th read).
powerloss: $(STAMP)
	ALGODOSE_POWERLOSS=full $(PY) -m pytest -q tests/test_powerloss.py
	ALGODOSE_POWERLOSS=full $(PY) -m pytest -q tests/test_visit.py -k device_error

# Rewrite the golden screen images (tests/golden/*.png) from what the firmware draws now;
# look at them (git diff shows which changed) before committing.
golden: $(STAMP)
	ALGODOSE_GOLDEN=update $(PY) -m pytest -q tests/test_golden.py

# The clinician guide's pictures (docs/images/): the unit's screens drawn by the firmware's
# screen functions from a simulated visit, and a report's charts; look at them before
# committing.
docs-images: $(STAMP)
	$(PY) -m simulator.docs_images

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
