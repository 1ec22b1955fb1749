# CamVid street scenes (../shared/data/camvid beside the repository, see docs/results.md) trained from scratch
# on a 2-core CPU: the base of the ablation in docs/results.md (tools/run_camvid_ablation.sh).
#
# Budget (one run, estimated 8-9 minutes on 2 quiet CPU cores; not yet measured with this recipe): training on
# random 192x256 crops of the full 360x480 photos, batch 8, 45 steps per epoch, 8 epochs = 360 steps;
# validation on the 101 val images at their full 360x480 (evaluation runs at each image's own size, as
# tools/test.py and tools/infer_tta.py predict) with Boundary IoU, every 2 epochs. A GPU user should crop
# 512x512 (or train on 720x960 originals), train 100+ epochs and start from ImageNet weights
# (model.encoder_weights="imagenet").
# Override the data folder with --set data.root=/path/to/camvid.
import os

_base_ = ["../_base_/default_runtime.py"]
data = dict(
    root=os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "camvid")),
    img_dir="images",
    train=dict(
        ann="train.json",
        pipeline=[
            dict(type="RandomCrop", height=192, width=256),
            dict(type="HorizontalFlip", p=0.5),
        ],
    ),
    val=dict(ann="val.json"),
    test=dict(ann="val.json"),
    batch_size=8,
    val_batch_size=8,
    num_workers=1,
)
# 12 classes: Background (CamVid's unlabelled pixels, scored like any class here) + CamVid's 11.
model = dict(type="Unet", encoder_name="resnet18", encoder_weights=None, decoder_channels=(128, 64, 32, 16, 16))
loss = dict(type="CrossEntropy")
optimizer = dict(type="AdamW", lr=2e-3, weight_decay=1e-2)
scheduler = dict(type="CosineWarmup", warmup_iters=30, min_lr_ratio=0.01)
evaluation = dict(boundary_iou=True, panels=False, hparams=False)
train = dict(epochs=8, val_interval=2, seed=0, device="cpu", log_interval=23)
