# HRNet-OCR on an ImageNet HRNet-W48 (the trash competition winners' architecture), 512 px (the photos' own
# size), batch 8, 40 epochs. The auxiliary soft-object-region head adds 0.4 x its loss during training only.
# Offline? --set model.encoder_weights=None, or model.pretrained='hrnet_w48.pth' for local timm weights.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="HRNetOCR", backbone="hrnet_w48", encoder_weights="imagenet",
             ocr_mid_channels=512, ocr_key_channels=256, aux_weight=0.4)
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
optimizer = dict(lr=2e-4)
train = dict(amp=True)  # W48-OCR is memory-hungry at 512 px x 8; mixed precision roughly halves activations
