# Settings every run shares unless a config says otherwise.
train = dict(seed=42, log_interval=20, device="auto", amp=False, deterministic=False)
