# Minutes on a laptop CPU: HRNet-OCR on the smallest timm HRNet (W18-small, 1.5 M parameters), trained from
# scratch on the synthetic demo set (make demo), with a narrow OCR head.
_base_ = [
    "_base_/datasets/demo_coco.py",
    "_base_/schedules/adamw_cosine.py",
    "_base_/default_runtime.py",
]
model = dict(type="HRNetOCR", backbone="hrnet_w18_small", encoder_weights=None,
             ocr_mid_channels=128, ocr_key_channels=64)
loss = dict(type="CrossEntropy")
optimizer = dict(lr=2e-3)
scheduler = dict(warmup_iters=20)
train = dict(epochs=12, log_interval=10)
