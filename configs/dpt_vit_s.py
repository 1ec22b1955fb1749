# DPT on an ImageNet ViT-S/16 (timm vit_small_patch16_224, position embeddings interpolated to any size) on
# the trash recipe: 512 px, batch 8, 40 epochs, the recipe's boundary focal loss and cosine schedule, AMP.
# Inputs are padded to multiples of 32 (twice the patch size: DPT's coarsest reassembly is stride 2).
# Optimiser: as in the DPT paper, the ViT trains 10x slower than the new decoder: AdamW lr=1e-4 for the
# decoder, encoder_lr_mult=0.1 -> 1e-5 for the encoder.
# Offline? --set model.encoder_weights=None, or model.pretrained='vit_small.pth' for local timm weights.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="DPT", encoder_name="tu-vit_small_patch16_224", encoder_weights="imagenet",
             decoder_intermediate_channels=(96, 192, 384, 768), decoder_fusion_channels=256)
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
optimizer = dict(type="AdamW", lr=1e-4, weight_decay=1e-2, encoder_lr_mult=0.1)
train = dict(amp=True)
