# Minutes on a laptop CPU: a small Unet trained from scratch on the synthetic demo set (make demo).
_base_ = [
    "_base_/datasets/demo_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="Unet", encoder_name="resnet18", encoder_weights=None,
             decoder_channels=(128, 64, 32, 16, 16))
loss = dict(type="CrossEntropy")
optimizer = dict(lr=2e-3)
scheduler = dict(warmup_iters=20)
train = dict(epochs=12, log_interval=10)
