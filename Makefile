# The README's two commands: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA := data/demo
DEMO_CONFIG := configs/demo_unet.py
DEMO_WORK := work_dirs/demo_unet

.PHONY: install demo test lint clean

install: $(STAMP)

# Re-runs only when the packaging files change; torch/torchvision come pinned from constraints.txt.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(DEMO_DATA)/train.json: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

demo: $(STAMP) $(DEMO_DATA)/train.json
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK)
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_WORK)/checkpoints/best.pth --out $(DEMO_WORK)/test_metrics.json
	@echo "Done. Inspect with: $(VENV)/bin/tensorboard --logdir work_dirs"

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf work_dirs $(DEMO_DATA)
