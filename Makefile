# The README's two commands: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA := data/demo
DEMO_CONFIG := configs/demo_unet.py
DEMO_WORK := work_dirs/demo_unet
DEMO_KFOLD := work_dirs/demo_unet_kfold
STUDENT_CONFIG := configs/demo_unet_pseudo.py
STUDENT_WORK := work_dirs/demo_unet_pseudo

.PHONY: install demo demo-research results test lint clean

install: $(STAMP)

# Re-runs only when the packaging files change; torch/torchvision come pinned from constraints.txt.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,deploy]'
	touch $(STAMP)

$(DEMO_DATA)/train.json: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

# The first ten minutes (<= 4 on a 2-core CPU, install excluded): a data report and augmented samples,
# training (TensorBoard panels at every validation), the best checkpoint evaluated plain and with flip TTA
# (one panel PNG per validation image), and the unlabelled test split predicted by an ensemble of best.pth and
# last.pth with flip TTA: the submission CSV plus index and colour PNG masks; last, best.pth exported to ONNX and
# checked against PyTorch by onnxruntime (docs/deploy.md).
demo: $(STAMP) $(DEMO_DATA)/train.json
	$(PY) tools/analyze_dataset.py $(DEMO_DATA)/train.json $(DEMO_DATA)/val.json --out $(DEMO_WORK)/data_report
	$(PY) tools/browse_dataset.py $(DEMO_CONFIG) --split train --num 8 --out $(DEMO_WORK)/browse
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK) --overwrite
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_WORK)/checkpoints/best.pth --out $(DEMO_WORK)/test_metrics.json
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_WORK)/checkpoints/best.pth --tta flip \
		--out $(DEMO_WORK)/test_metrics_tta.json --show-dir $(DEMO_WORK)/panels
	$(PY) tools/infer_tta.py $(DEMO_WORK)/checkpoints/best.pth $(DEMO_WORK)/checkpoints/last.pth \
		--input $(DEMO_DATA)/test.json --tta flip --out-dir $(DEMO_WORK)/test_predictions \
		--submission $(DEMO_WORK)/submission.csv --save-png --save-color --overwrite
	$(PY) tools/export.py $(DEMO_WORK)/checkpoints/best.pth --out $(DEMO_WORK)/model.onnx
	@echo "Done: $(DEMO_WORK). Inspect with: $(VENV)/bin/tensorboard --logdir work_dirs"

# The research round on top of the demo run (about 10 minutes on 2 cores): a 2-fold run whose folds get the
# demo run's 144 steps each (24 epochs of 100 images) and its out-of-fold mIoU; one pseudo-labelling round
# (docs/pseudo_labels.md): best.pth with d4 TTA labels the test images (data/demo/pseudo.json + a report) and a
# student trains on train + pseudo-labels for the teacher's epochs; one table comparing the runs
# (work_dirs/demo_compare.md, .png).
demo-research: $(STAMP) $(DEMO_WORK)/checkpoints/best.pth
	$(PY) tools/train_kfold.py configs/demo_unet_kfold.py --folds 2 --work-dir $(DEMO_KFOLD) --overwrite --no-progress
	$(PY) tools/pseudo_label.py $(DEMO_CONFIG) $(DEMO_WORK)/checkpoints/best.pth --input $(DEMO_DATA)/test.json \
		--out $(DEMO_DATA)/pseudo.json --tta d4 --threshold 0.7 --report $(DEMO_WORK)/pseudo_report.md --overwrite
	$(PY) tools/train.py $(STUDENT_CONFIG) --work-dir $(STUDENT_WORK) --overwrite
	$(PY) tools/compare_runs.py $(DEMO_WORK) $(DEMO_KFOLD) $(STUDENT_WORK) --baseline $(DEMO_WORK) \
		--plot work_dirs/demo_compare.png --out work_dirs/demo_compare.md
	@echo "Done: $(DEMO_KFOLD), $(STUDENT_WORK), work_dirs/demo_compare.md"

$(DEMO_WORK)/checkpoints/best.pth:
	$(MAKE) demo

# The CamVid ablation of docs/results.md (hours of CPU; needs ../shared/data/camvid or CAMVID=/path/to/camvid):
# every run resumes, so rerunning after an interruption continues where it stopped. SWEEPS sets the sweep folder.
results: $(STAMP)
	PYTHON=$(PY) bash tools/run_camvid_ablation.sh

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf work_dirs $(DEMO_DATA)
