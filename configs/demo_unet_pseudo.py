# The student of `make demo` (docs/pseudo_labels.md): the demo Unet trained on the 200 labelled images plus the
# 50 test images pseudo-labelled by the demo run's best.pth (data/demo/pseudo.json, written by
# tools/pseudo_label.py with d4 TTA). Everything else is the teacher's config: the same 12 epochs, in which
# every labelled image is drawn 12 times as for the teacher and every pseudo-labelled image 12 times too
# (15 steps an epoch instead of 12).
_base_ = ["demo_unet.py"]
data = dict(train=dict(ann=None, sources=[dict(ann="train.json"), dict(ann="pseudo.json")]))
