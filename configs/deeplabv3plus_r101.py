# DeepLabV3+ on an ImageNet ResNet-101 (output stride 16, ASPP rates 12/24/36), 512 px, batch 8, 40 epochs:
# the classic strong baseline to compare Unet and HRNet-OCR against.
# Offline? --set model.encoder_weights=None, or model.pretrained='resnet101.pth' for local encoder weights.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="DeepLabV3Plus", encoder_name="resnet101", encoder_weights="imagenet",
             encoder_output_stride=16, decoder_channels=256, decoder_atrous_rates=(12, 24, 36))
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
