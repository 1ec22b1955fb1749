# The synthetic demo set written by `python tools/make_demo_data.py --out data/demo` (128x128 images).
data = dict(
    root="data/demo",
    img_dir="images",
    train=dict(
        ann="train.json",
        pipeline=[
            dict(type="HorizontalFlip", p=0.5),
            # Brings any dataset (e.g. --set data.root=... on your own COCO set) to one batchable size.
            dict(type="RandomResizedCrop", size=(128, 128), scale=(0.5, 1.0), p=1.0),
        ],
    ),
    val=dict(ann="val.json"),
    test=dict(ann="test.json"),
    batch_size=16,
    num_workers=2,
)
