from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from segkit.config import load_config
from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError

REPO = Path(__file__).resolve().parents[2]


def test_no_pipeline_is_none():
    assert build_pipeline(None) is None
    assert build_pipeline([]) is None


def test_flip_moves_image_and_mask_together():
    pipeline = build_pipeline([dict(type="HorizontalFlip", p=1.0)])
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    mask = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = pipeline(image=image, mask=mask)
    np.testing.assert_array_equal(out["image"], image[:, ::-1])
    np.testing.assert_array_equal(out["mask"], mask[:, ::-1])
    assert out["image"].dtype == np.uint8 and out["mask"].dtype == np.uint8


def test_nested_containers_are_built_recursively():
    pipeline = build_pipeline(
        [
            dict(type="OneOf", p=1.0, transforms=[dict(type="VerticalFlip"), dict(type="Transpose")]),
            dict(type="SomeOf", n=1, transforms=[dict(type="RandomGamma", gamma_limit=(90, 110))]),
        ]
    )
    one_of, some_of = pipeline.transforms
    assert isinstance(one_of, A.OneOf) and isinstance(some_of, A.SomeOf)
    assert [type(t) for t in one_of.transforms] == [A.VerticalFlip, A.Transpose]
    assert some_of.n == 1 and some_of.transforms[0].gamma_limit == (90, 110)


def test_unknown_type_names_where_index_and_closest_names():
    with pytest.raises(SegkitError, match=r"data.train.pipeline\[1\]: 'HorizontalFilp' .*'HorizontalFlip'"):
        build_pipeline([dict(type="VerticalFlip"), dict(type="HorizontalFilp")])
    nested = [dict(type="OneOf", transforms=[dict(type="Blur"), dict(type="Nonsense")])]
    with pytest.raises(SegkitError, match=r"data.val.pipeline\[0\].transforms\[1\]: 'Nonsense'"):
        build_pipeline(nested, where="data.val.pipeline")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (dict(type="HorizontalFlip", prob=0.5), r"\[0\] \(HorizontalFlip\): unknown argument 'prob'"),
        (dict(type="RandomCrop", height=-1, width=4), r"\[0\] \(RandomCrop\): height: .*greater than"),
        (dict(type="OneOf"), r"\[0\] \(OneOf\): .*missing 1 required positional argument: 'transforms'"),
    ],
)
def test_bad_arguments_name_the_transform_in_one_line(item, message):
    with pytest.raises(SegkitError, match=message) as info:
        build_pipeline([item])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["Normalize", "ToTensorV2", "ToFloat"])
def test_device_side_steps_are_refused_with_the_reason(name):
    with pytest.raises(SegkitError, match=rf"\[0\].transforms\[0\]: remove {name} .*normalises them there"):
        build_pipeline([dict(type="Sequential", transforms=[dict(type=name)])])


@pytest.mark.parametrize("cfg", [dict(type="HorizontalFlip"), [dict(p=0.5)], ["HorizontalFlip"]])
def test_malformed_lists_are_errors(cfg):
    with pytest.raises(SegkitError, match=r"data.train.pipeline"):
        build_pipeline(cfg)


def test_shipped_trash_affine_fills_its_border_with_ignore_not_background():
    """The trash recipe's Affine at scale 0.8 and 15 degrees: the created border is 255, never class 0."""
    shipped = load_config(REPO / "configs" / "unet_effb4.py").data
    affine = next(item for item in shipped.train.pipeline if item["type"] == "Affine")
    built = build_pipeline(shipped.train.pipeline, ignore_index=shipped.ignore_index)
    assert shipped.ignore_index == 255
    assert next(t for t in built.transforms if isinstance(t, A.Affine)).fill_mask == 255
    fixed = build_pipeline([{**affine, "scale": 0.8, "rotate": 15, "p": 1.0}])
    mask = fixed(image=np.zeros((64, 64, 3), np.uint8), mask=np.ones((64, 64), np.uint8))["mask"]
    assert set(np.unique(mask).tolist()) == {1, 255}
    assert mask[0, 0] == mask[-1, -1] == 255 and mask[32, 32] == 1
    assert (mask == 255).mean() > 0.25  # about a third of the mask was Background before


@pytest.mark.parametrize("name", ["Rotate", "SafeRotate", "ShiftScaleRotate", "Perspective", "PadIfNeeded",
                                  "CropAndPad", "ElasticTransform", "GridDistortion", "OpticalDistortion"])
def test_every_transform_that_creates_pixels_fills_the_mask_with_the_ignore_index(name):
    args = {"Rotate": dict(limit=(30, 30)), "SafeRotate": dict(limit=(30, 30)),
            "ShiftScaleRotate": dict(shift_limit=0, scale_limit=(-0.3, -0.3), rotate_limit=0),
            "Perspective": dict(scale=(0.2, 0.2), fit_output=True), "PadIfNeeded": dict(min_height=48, min_width=48),
            "CropAndPad": dict(px=8), "ElasticTransform": dict(alpha=200, sigma=3),
            "GridDistortion": dict(distort_limit=(0.6, 0.6)), "OpticalDistortion": dict(distort_limit=(0.9, 0.9))}
    pipeline = build_pipeline([dict(type=name, p=1.0, **args[name])], ignore_index=254)
    pipeline.set_random_seed(0)
    assert pipeline.transforms[0].fill_mask == 254
    mask = pipeline(image=np.zeros((32, 32, 3), np.uint8), mask=np.ones((32, 32), np.uint8))["mask"]
    assert 0 not in mask and 254 in mask  # a border was created, and it is ignore


def test_an_explicit_fill_mask_wins_and_dropouts_keep_their_meaning():
    pipeline = build_pipeline([dict(type="Affine", fill_mask=0), dict(type="CoarseDropout"),
                               dict(type="MaskDropout")])
    assert [t.fill_mask for t in pipeline.transforms] == [0, None, 0]
