# SegFormer-B2 (Mix Transformer mit_b2 encoder, all-MLP decoder) on the trash recipe: 512 px, batch 8,
# 40 epochs, the recipe's boundary focal loss and cosine schedule, AMP.
# Optimiser: transformers train with AdamW and small LRs. As in the SegFormer paper the encoder runs at 6e-5
# and the freshly initialised decoder 10x faster: lr=6e-4 is the decoder's, encoder_lr_mult=0.1 the encoder's.
# Offline? --set model.encoder_weights=None, or model.pretrained='mit_b2.pth' for local encoder weights.
_base_ = [
    "_base_/datasets/trash_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="Segformer", encoder_name="mit_b2", encoder_weights="imagenet",
             decoder_segmentation_channels=256)
loss = dict(type="BoundaryFocal", gamma=2.0, boundary_weight=2.0, sigma=3.0)
optimizer = dict(type="AdamW", lr=6e-4, weight_decay=1e-2, encoder_lr_mult=0.1)
train = dict(amp=True)
