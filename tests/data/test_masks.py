from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segkit.data.masks import annotation_rle, class_index_map, rasterize
from segkit.errors import SegkitError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def square(x0: int, y0: int, x1: int, y1: int) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def poly_ann(ann_id: int, cat: int, *parts: list[float], area: float = 1.0) -> dict:
    return {"id": ann_id, "image_id": 0, "category_id": cat, "segmentation": list(parts), "area": area}


def uncompressed_counts(binary: np.ndarray) -> list[int]:
    """Run lengths of a 0/1 mask in column-major order, starting with a run of zeros."""
    flat = binary.ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def test_class_index_map_ranks_categories_by_id():
    names, cat_to_index = class_index_map(
        [{"id": 5, "name": "can"}, {"id": 2, "name": "paper"}, {"id": 9, "name": "glass"}]
    )
    assert names == ["Background", "paper", "can", "glass"]
    assert cat_to_index == {2: 1, 5: 2, 9: 3}


def test_class_index_map_rejects_duplicates_and_too_many_classes():
    with pytest.raises(SegkitError, match="category id 3 appears twice"):
        class_index_map([{"id": 3, "name": "a"}, {"id": 3, "name": "b"}])
    with pytest.raises(SegkitError, match="'a' is used by classes 1 and 2"):
        class_index_map([{"id": 3, "name": "a"}, {"id": 4, "name": "a"}])
    with pytest.raises(SegkitError, match=r"categories\[1\] must be a dict"):
        class_index_map([{"id": 3, "name": "a"}, {"name": "b"}])
    fits = [{"id": i, "name": f"c{i}"} for i in range(253)]
    assert len(class_index_map(fits)[0]) == 254
    with pytest.raises(SegkitError, match="255 classes"):
        class_index_map([*fits, {"id": 999, "name": "one too many"}])


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_small_object_stays_on_top_whatever_the_order(order):
    # The json "area" fields claim the opposite sizes: the true pixel areas must decide.
    big = poly_ann(1, 7, square(0, 0, 8, 8), area=1.0)
    small = poly_ann(2, 3, square(2, 2, 5, 5), area=1000.0)
    anns = [(big, small)[k] for k in order]
    mask = rasterize(anns, 10, 10, {3: 1, 7: 2})
    expected = np.zeros((10, 10), np.uint8)
    expected[0:8, 0:8] = 2
    expected[2:5, 2:5] = 1
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8


def test_equal_areas_paint_in_annotation_order():
    first = poly_ann(1, 1, square(0, 0, 4, 4))
    second = poly_ann(2, 2, square(2, 0, 6, 4))
    mask = rasterize([first, second], 6, 8, {1: 1, 2: 2})
    assert mask[1, 3] == 2 and mask[1, 1] == 1 and mask[1, 5] == 2
    mask = rasterize([second, first], 6, 8, {1: 1, 2: 2})
    assert mask[1, 3] == 1


def test_multi_part_polygon_paints_every_part():
    ann = poly_ann(1, 4, square(0, 0, 3, 3), square(6, 5, 9, 9))
    mask = rasterize([ann], 10, 12, {4: 1})
    expected = np.zeros((10, 12), np.uint8)
    expected[0:3, 0:3] = 1
    expected[5:9, 6:9] = 1
    np.testing.assert_array_equal(mask, expected)


def test_rle_forms_decode_like_the_polygon():
    h, w = 12, 9
    polygon = poly_ann(1, 1, [1, 1, 7, 2, 5, 10, 0, 8], square(6, 8, 9, 12))
    binary = mask_utils.decode(annotation_rle(polygon, h, w))
    assert 10 < binary.sum() < h * w
    compressed = mask_utils.encode(np.asfortranarray(binary))["counts"]
    forms = [
        {"counts": uncompressed_counts(binary), "size": [h, w]},
        {"counts": compressed, "size": [h, w]},
        {"counts": compressed.decode("ascii"), "size": [h, w]},
    ]
    for segm in forms:
        ann = {"id": 2, "category_id": 1, "segmentation": segm}
        np.testing.assert_array_equal(mask_utils.decode(annotation_rle(ann, h, w)), binary)
        np.testing.assert_array_equal(rasterize([ann], h, w, {1: 1}), rasterize([polygon], h, w, {1: 1}))


@pytest.mark.parametrize(
    ("segmentation", "why"),
    [
        ([], "polygon list is empty"),
        ([[1, 1, 5, 1, 5]], "5 numbers"),
        ([[1, 1, 5, 1]], "4 numbers"),
        ([[1, 1, 5, 1, 5, "x"]], "not a flat list of numbers"),
        ([[1, 1, 5, 1, 5, float("nan")]], "not a flat list of numbers"),
        (None, "expected a list of polygons"),
        ({"counts": [0, 10], "size": [4, 5]}, r"does not match the image size \[4, 4\]"),
        ({"counts": [3, 4, 5], "size": [4, 4]}, "cover 12 pixels, not 4x4=16"),
        ({"counts": [3, -1, 14], "size": [4, 4]}, "non-negative integers"),
        ({"counts": "1", "size": [4, 4]}, "cover 1 pixels"),
        ({"counts": "0\x7f", "size": [4, 4]}, "the character"),
        ({"counts": "o", "size": [4, 4]}, "middle of a number"),
        ({"counts": 16, "size": [4, 4]}, "list of ints or a string"),
    ],
)
def test_malformed_segmentation_names_the_annotation(segmentation, why):
    ann = {"id": 41, "category_id": 1, "segmentation": segmentation}
    with pytest.raises(SegkitError, match=f"annotation id=41 has a malformed segmentation: .*{why}"):
        rasterize([ann], 4, 4, {1: 1})


def test_unknown_category_names_annotation_category_and_known_ids():
    ann = poly_ann(8, 42, square(0, 0, 2, 2))
    with pytest.raises(SegkitError, match=r"annotation id=8 has category_id=42.*known ids: \[0, 3\]"):
        rasterize([ann], 4, 4, {0: 1, 3: 2})


def test_no_annotations_is_all_background():
    mask = rasterize([], 3, 5, {1: 1})
    assert mask.shape == (3, 5) and mask.dtype == np.uint8 and not mask.any()


def load_coco(path: Path) -> COCO:
    if not path.is_file():
        pytest.skip(f"shared fixture {path} is absent (it lives beside the checkout, not in it)")
    coco = COCO()
    coco.dataset = json.loads(path.read_text())
    coco.createIndex()
    return coco


def reference_mask(coco: COCO, image: dict) -> np.ndarray:
    """pycocotools' own annToMask per annotation, painted largest first in a plain numpy loop."""
    rank = {cat_id: r + 1 for r, cat_id in enumerate(sorted(coco.getCatIds()))}
    layers = []
    for ann in coco.imgToAnns[image["id"]]:
        binary = coco.annToMask(ann)
        layers.append((int(np.count_nonzero(binary)), binary, rank[ann["category_id"]]))
    out = np.zeros((image["height"], image["width"]), np.uint8, order="F")  # annToMask's own layout
    for _, binary, index in sorted(layers, key=lambda layer: -layer[0]):
        out[binary == 1] = index
    return out


def ours(coco: COCO, image: dict) -> np.ndarray:
    _, cat_to_index = class_index_map(coco.dataset["categories"])
    return rasterize(coco.imgToAnns[image["id"]], image["height"], image["width"], cat_to_index)


def test_labelme_fixture_matches_pycocotools_and_the_tools_own_masks():
    root = SHARED / "labelme_coco"
    coco = load_coco(root / "annotations.json")
    for image in coco.dataset["images"]:
        mask = ours(coco, image)
        np.testing.assert_array_equal(mask, reference_mask(coco, image), err_msg=image["file_name"])
        # Category id 0 (_background_) is class 1 under the rank rule, so class - 1 is the VOC id;
        # our 0 (unannotated) is background too.
        voc_ids = np.where(mask == 0, 0, mask.astype(np.int32) - 1)
        tool = np.load(root / "voc_class_masks" / (Path(image["file_name"]).stem + ".npy"))
        valid = tool != -1
        agreement = (voc_ids[valid] == tool[valid]).mean()
        assert agreement >= 0.99, f"{image['file_name']}: {agreement:.4f}"
        assert set(np.unique(tool[valid])) - {0} <= set(np.unique(voc_ids))


def test_taco_matches_pycocotools_at_listed_sizes():
    """Every 30th TACO image (50 of 1500, spread over all batches and sizes): the photos are up to
    24 MP and both sides decode every annotation at full size, so all 1500 cost ~2 min of CPU and
    150 still ~12 s, over this suite's budget; these 50 take ~4 s."""
    coco = load_coco(SHARED / "taco" / "annotations.json")
    images = coco.dataset["images"][::30]
    assert len(images) == 50
    for image in images:
        differ = np.count_nonzero(ours(coco, image) != reference_mask(coco, image))
        assert differ == 0, f"{image['file_name']}: {differ} pixels differ"
