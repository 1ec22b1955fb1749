from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from segkit.data.transforms import build_pipeline
from segkit.errors import SegkitError


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
