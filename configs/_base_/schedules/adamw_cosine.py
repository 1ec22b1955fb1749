# AdamW with linear warmup then cosine decay, stepped every iteration.
optimizer = dict(type="AdamW", lr=3e-4, weight_decay=1e-2)
scheduler = dict(type="CosineWarmup", warmup_iters=300, min_lr_ratio=0.01)
train = dict(epochs=40, val_interval=1)
