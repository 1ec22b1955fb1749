# The k-fold run of `make demo-research` (docs/kfold.md): the demo Unet, 2 folds of 100 training images each,
# trained for 24 epochs so every fold gets the demo run's 144 steps (12 epochs of 200 images); fewer steps
# would leave the out-of-fold mIoU far below the single run's and teach that k-fold is broken.
_base_ = ["demo_unet.py"]
train = dict(epochs=24)
