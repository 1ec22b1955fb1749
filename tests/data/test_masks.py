from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segkit.data.classes import class_index_map
from segkit.data.demo import make_demo_dataset
from segkit.data.masks import OVERLAP_POLICIES, annotation_runs, rasterize, segmentation_problem
from segkit.errors import SegkitError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def square(x0: int, y0: int, x1: int, y1: int, extra: int = 0) -> list[float]:
    """An axis-aligned square; ``extra`` collinear points on its top edge make the list longer only."""
    top = [v for k in range(1, extra + 1) for v in (x0 + (x1 - x0) * k / (extra + 1), y0)]
    return [x0, y0, *top, x1, y0, x1, y1, x0, y1]


def poly_ann(ann_id: int, cat: int, *parts: list[float], area: float = 1.0, **extra) -> dict:
    return {"id": ann_id, "image_id": 0, "category_id": cat, "segmentation": list(parts), "area": area, **extra}


def uncompressed_counts(binary: np.ndarray) -> list[int]:
    """Run lengths of a 0/1 mask in column-major order, starting with a run of zeros."""
    flat = binary.ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


# Three overlapping squares on a 10x12 image, listed medium, big, small; classes 3, 1, 2; the first
# polygons have 6, 4 and 5 points. Each policy stacks them differently.
BIG = poly_ann(1, 10, square(0, 0, 8, 8))  # 64 px, class 1, 8 numbers
MEDIUM = poly_ann(2, 30, square(4, 4, 10, 10, extra=2))  # 36 px, class 3, 12 numbers
SMALL = poly_ann(3, 20, square(2, 2, 5, 5, extra=1))  # 9 px, class 2, 10 numbers
STACK = [MEDIUM, BIG, SMALL]
INDEX = {10: 1, 20: 2, 30: 3}
AREAS = {1: (0, 0, 8, 8), 2: (2, 2, 5, 5), 3: (4, 4, 10, 10)}  # class: painted rectangle x0, y0, x1, y1


def painted(*classes: int) -> np.ndarray:
    """The classes' rectangles painted bottom to top with plain numpy."""
    out = np.zeros((10, 12), np.uint8)
    for c in classes:
        x0, y0, x1, y1 = AREAS[c]
        out[y0:y1, x0:x1] = c
    return out


@pytest.mark.parametrize(
    ("overlap", "expected"),
    [
        ("area_desc", painted(1, 3, 2)),  # largest first, smallest on top
        ("poly_len_asc", painted(1, 2, 3)),  # 8, 10, 12 numbers
        ("annotation_order", painted(3, 1, 2)),  # json order
        ("max_class", np.maximum(np.maximum(painted(1), painted(2)), painted(3))),
    ],
)
def test_overlap_policies(overlap, expected):
    mask = rasterize(STACK, 10, 12, INDEX, overlap=overlap)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_pixel_areas_decide_not_the_json_area_field(order):
    big = poly_ann(1, 7, square(0, 0, 8, 8), area=1.0)
    small = poly_ann(2, 3, square(2, 2, 5, 5), area=1000.0)
    mask = rasterize([(big, small)[k] for k in order], 10, 10, {3: 1, 7: 2})
    expected = np.zeros((10, 10), np.uint8)
    expected[0:8, 0:8] = 2
    expected[2:5, 2:5] = 1
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("overlap", ["area_desc", "poly_len_asc"])
def test_ties_keep_annotation_order(overlap):
    first = poly_ann(1, 1, square(0, 0, 4, 4))
    second = poly_ann(2, 2, square(2, 0, 6, 4))
    assert rasterize([first, second], 6, 8, {1: 1, 2: 2}, overlap=overlap)[1, 3] == 2
    assert rasterize([second, first], 6, 8, {1: 1, 2: 2}, overlap=overlap)[1, 3] == 1


def test_dropped_category_is_not_painted_and_hides_nothing():
    mask = rasterize(STACK, 10, 12, {10: 1, 20: 0, 30: 3})
    np.testing.assert_array_equal(mask, painted(1, 3))


def test_ignore_category_takes_part_in_the_policy():
    mask = rasterize(STACK, 10, 12, {10: 1, 20: 255, 30: 3})
    expected = painted(1, 3)
    expected[2:5, 2:5] = 255
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("overlap", OVERLAP_POLICIES)
def test_ignored_crowd_regions_lie_beneath_every_object(overlap):
    crowd_binary = np.zeros((10, 12), np.uint8)
    crowd_binary[3:9, 3:12] = 1
    crowd = {"id": 9, "category_id": 30, "iscrowd": 1,
             "segmentation": {"counts": uncompressed_counts(crowd_binary), "size": [10, 12]}}
    anns = [BIG, SMALL, crowd]
    expected = rasterize([BIG, SMALL], 10, 12, INDEX, overlap=overlap)
    expected[(crowd_binary == 1) & (expected == 0)] = 255
    np.testing.assert_array_equal(rasterize(anns, 10, 12, INDEX, overlap=overlap, crowd="ignore"), expected)
    painted_crowd = rasterize(anns, 10, 12, INDEX, overlap="annotation_order", crowd="paint")
    assert painted_crowd[4, 4] == 3 and painted_crowd[8, 11] == 3 and painted_crowd[0, 11] == 0


def test_a_custom_ignore_index_marks_ignored_crowds_and_categories():
    crowd = {"id": 9, "category_id": 30, "iscrowd": 1, "segmentation": [square(6, 0, 12, 10)]}
    mask = rasterize([BIG, crowd], 10, 12, {10: 1, 20: 254, 30: 3}, crowd="ignore", ignore_index=254)
    reference = rasterize([BIG, crowd], 10, 12, {10: 1, 20: 255, 30: 3}, crowd="ignore")
    np.testing.assert_array_equal(mask, np.where(reference == 255, 254, reference))
    assert 254 in mask and 255 not in mask


def test_multi_part_polygon_paints_every_part():
    ann = poly_ann(1, 4, square(0, 0, 3, 3), square(6, 5, 9, 9))
    expected = np.zeros((10, 12), np.uint8)
    expected[0:3, 0:3] = 1
    expected[5:9, 6:9] = 1
    np.testing.assert_array_equal(rasterize([ann], 10, 12, {4: 1}), expected)


def test_rle_forms_decode_like_the_polygon():
    h, w = 12, 9
    polygon = poly_ann(1, 1, [1, 1, 7, 2, 5, 10, 0, 8], square(6, 8, 9, 12))
    binary = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon["segmentation"], h, w)))
    assert 10 < binary.sum() < h * w
    compressed = mask_utils.encode(np.asfortranarray(binary))["counts"]
    forms = [
        {"counts": uncompressed_counts(binary), "size": [h, w]},
        {"counts": compressed, "size": [h, w]},
        {"counts": compressed.decode("ascii"), "size": [h, w]},
    ]
    reference = rasterize([polygon], h, w, {1: 1})
    np.testing.assert_array_equal(reference, binary)
    for segm in forms:
        ann = {"id": 2, "category_id": 1, "segmentation": segm}
        np.testing.assert_array_equal(rasterize([ann], h, w, {1: 1}), reference)
        assert annotation_runs([ann], h, w)[0].sum() == h * w


@pytest.mark.parametrize(
    ("segmentation", "why"),
    [
        ([], "polygon list is empty"),
        ([[1, 1, 5, 1, 5]], "odd count of 5 numbers"),
        ([[1, 1, 5, 1]], "2 points; a polygon needs at least 3"),
        ([[1, 1, 5, 1, 5, "x"]], "not a flat list of finite numbers"),
        ([[1, 1, 5, 1, 5, float("nan")]], "not a flat list of finite numbers"),
        ([[1, 1, 5, 1, float("inf"), 2]], "not a flat list of finite numbers"),
        ([[1, 1, 5, 1, 5, [2]]], "not a flat list of finite numbers"),
        ([(1, 1, 5, 1, 5, 5)], "polygon part 0 is not a list"),
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
    assert re.search(why, segmentation_problem(ann, 4, 4) or "") is not None  # the check datasets run up front
    with pytest.raises(SegkitError, match=f"annotation id=41 has a malformed segmentation: .*{why}"):
        rasterize([poly_ann(40, 1, square(0, 0, 2, 2)), ann], 4, 4, {1: 1})


def test_valid_segmentations_have_no_problem():
    assert segmentation_problem(BIG, 10, 12) is None
    assert segmentation_problem({"segmentation": {"counts": "04", "size": [2, 2]}}, 2, 2) is None


def test_unknown_category_and_bad_settings():
    with pytest.raises(SegkitError, match=r"annotation id=8 has category_id=42.*known ids: \[0, 3\]"):
        rasterize([poly_ann(8, 42, square(0, 0, 2, 2))], 4, 4, {0: 1, 3: 2})
    with pytest.raises(SegkitError, match="overlap policy 'biggest' is not one of area_desc, max_class"):
        rasterize([], 4, 4, {}, overlap="biggest")
    with pytest.raises(SegkitError, match="crowd mode 'drop' is not one of paint, ignore"):
        rasterize([], 4, 4, {}, crowd="drop")


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


def reference_mask(coco: COCO, image: dict, cat_to_index: dict[int, int], overlap: str) -> np.ndarray:
    """pycocotools' own annToMask per annotation, combined per policy in plain numpy."""
    layers = [(coco.annToMask(ann), cat_to_index[ann["category_id"]], ann) for ann in coco.imgToAnns[image["id"]]]
    layers = [layer for layer in layers if layer[1] != 0]
    out = np.zeros((image["height"], image["width"]), np.uint8)
    if overlap == "max_class":
        for binary, index, _ in layers:
            out = np.maximum(out, binary * np.uint8(index))
        return out
    if overlap == "area_desc":
        layers.sort(key=lambda layer: -int(np.count_nonzero(layer[0])))
    elif overlap == "poly_len_asc":
        layers.sort(key=lambda layer: len(layer[2]["segmentation"][0]))
    for binary, index, _ in layers:
        out[binary == 1] = index
    return out


@pytest.mark.parametrize("overlap", OVERLAP_POLICIES)
def test_labelme_fixture_matches_pycocotools_and_the_tools_own_masks(overlap):
    root = SHARED / "labelme_coco"
    coco = load_coco(root / "annotations.json")
    _, cat_to_index = class_index_map(coco.dataset["categories"])
    for image in coco.dataset["images"]:
        mask = rasterize(coco.imgToAnns[image["id"]], image["height"], image["width"], cat_to_index, overlap)
        np.testing.assert_array_equal(mask, reference_mask(coco, image, cat_to_index, overlap),
                                      err_msg=image["file_name"])
        # _background_ (id 0) is dropped by default, so class indices are the VOC ids the tool writes.
        tool = np.load(root / "voc_class_masks" / (Path(image["file_name"]).stem + ".npy"))
        valid = tool != -1
        agreement = (mask[valid] == tool[valid]).mean()
        assert agreement >= 0.99, f"{image['file_name']} under {overlap}: {agreement:.4f}"


@pytest.mark.parametrize("overlap", OVERLAP_POLICIES)
def test_demo_data_matches_pycocotools(tmp_path, overlap):
    make_demo_dataset(tmp_path, num_train=6, num_val=0, num_test=0, size=96, objects_per_image=(6, 9), progress=False)
    coco = load_coco(tmp_path / "train.json")
    _, cat_to_index = class_index_map(coco.dataset["categories"])
    for image in coco.dataset["images"]:
        mask = rasterize(coco.imgToAnns[image["id"]], 96, 96, cat_to_index, overlap)
        np.testing.assert_array_equal(mask, reference_mask(coco, image, cat_to_index, overlap))
