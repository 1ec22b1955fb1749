# Minutes on a laptop CPU: DeepLabV3+ on a ResNet-18 trained from scratch on the synthetic demo set
# (make demo).
_base_ = [
    "_base_/datasets/demo_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="DeepLabV3Plus", encoder_name="resnet18", encoder_weights=None, decoder_channels=64)
loss = dict(type="CrossEntropy")
optimizer = dict(lr=2e-3)
scheduler = dict(warmup_iters=20)
train = dict(epochs=12, log_interval=10)
