# UPerNet on an ImageNet ConvNeXt-T (timm's convnext_tiny through smp's universal encoder) on the trash recipe:
# 512 px, batch 8, 40 epochs, the recipe's boundary focal loss and cosine schedule, AMP.
# Optimiser: AdamW with the ConvNeXt segmentation setting's weight decay 0.05; the decoder at lr=4e-4 and the
# pretrained encoder 4x slower (encoder_lr_mult=0.25 -> 1e-4, the LR mmseg's ConvNeXt-T UPerNet uses).
# Offline? --set model.encoder_weights=None, or model.pretrained='convnext_tiny.pth' for local timm weights.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="UPerNet", encoder_name="tu-convnext_tiny", encoder_weights="imagenet", decoder_channels=256)
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
optimizer = dict(type="AdamW", lr=4e-4, weight_decay=5e-2, encoder_lr_mult=0.25)
train = dict(amp=True)
