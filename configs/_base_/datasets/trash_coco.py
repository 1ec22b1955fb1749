# The recycling-trash competition data: 512x512 photos, COCO polygons, 11 categories (ids 0..10) + Background.
# Layout: data/trash/{train,val,test}.json; file_name values such as "batch_01_vt/0002.jpg" are relative
# to data/trash itself, hence img_dir=".".
data = dict(
    root="data/trash",
    img_dir=".",
    train=dict(
        ann="train.json",
        pipeline=[
            dict(type="HorizontalFlip", p=0.5),
            dict(type="Affine", scale=(0.8, 1.2), rotate=(-15, 15), p=0.5),
            dict(type="RandomBrightnessContrast", p=0.3),
        ],
    ),
    val=dict(ann="val.json"),
    test=dict(ann="test.json"),
    batch_size=8,
    val_batch_size=8,
    num_workers=4,
)
