# The student of `make demo` (docs/pseudo_labels.md): the demo Unet trained on the 200 labelled images plus the
# 50 test images pseudo-labelled by the demo run's best.pth (data/demo/pseudo.json, written by
# tools/pseudo_label.py). Same budget as the teacher: both sources are drawn at weight 0.8, so an epoch is the
# teacher's 200 images (160 labelled + 40 pseudo-labelled, a new draw every epoch) and the 12 epochs are the
# teacher's 144 steps with the same LR schedule.
_base_ = ["demo_unet.py"]
data = dict(train=dict(ann=None, sources=[dict(ann="train.json", weight=0.8),
                                          dict(ann="pseudo.json", weight=0.8)]))
