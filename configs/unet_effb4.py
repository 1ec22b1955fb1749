# The trash-competition recipe: Unet on an ImageNet EfficientNet-B4, 512 px, batch 8, 40 epochs.
# Offline? Set model.encoder_weights=None (or point at local weights once supported) with --set.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="EfficientUnet", encoder_name="efficientnet-b4", encoder_weights="imagenet")
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
