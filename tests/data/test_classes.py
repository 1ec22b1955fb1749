from __future__ import annotations

import pytest

from segkit.data.classes import class_index_map
from segkit.errors import SegkitError

CATS = [{"id": 5, "name": "can"}, {"id": 2, "name": "paper"}, {"id": 9, "name": "glass"}, {"id": 7, "name": "foil"}]
LABELME = [{"id": 0, "name": "_background_"}, {"id": 1, "name": "aeroplane"}, {"id": 2, "name": "bicycle"}]


def test_default_ranks_categories_by_id():
    names, cat_to_index = class_index_map(CATS)
    assert names == ["Background", "paper", "can", "foil", "glass"]
    assert cat_to_index == {2: 1, 5: 2, 7: 3, 9: 4}


@pytest.mark.parametrize("name", ["_background_", "Background", "BACKGROUND"])
def test_default_drops_a_background_category(name):
    names, cat_to_index = class_index_map([{**LABELME[0], "name": name}, *LABELME[1:]])
    assert names == ["Background", "aeroplane", "bicycle"]
    assert cat_to_index == {0: 0, 1: 1, 2: 2}  # labelme's VOC ids are the class indices


def test_list_orders_merges_and_drops_the_rest():
    names, cat_to_index = class_index_map(CATS, ["glass", {"metal": ["can", 7]}])
    assert names == ["Background", "glass", "metal"]
    assert cat_to_index == {9: 1, 5: 2, 7: 2, 2: 0}  # paper is left out: dropped


def test_list_may_name_a_background_category_explicitly():
    names, cat_to_index = class_index_map(LABELME, ["bicycle", "_background_"])
    assert names == ["Background", "bicycle", "_background_"] and cat_to_index == {2: 1, 0: 2, 1: 0}


def test_mapping_merges_drops_and_ignores():
    names, cat_to_index = class_index_map(CATS, {"foil": 1, 5: 1, "paper": 0, 9: 255})
    assert names == ["Background", "foil"]  # a merged class takes its first category's name
    assert cat_to_index == {7: 1, 5: 1, 2: 0, 9: 255}


def test_a_custom_ignore_index_is_the_mapping_ignore_value_and_may_not_be_a_class():
    names, cat_to_index = class_index_map(CATS, {"foil": 1, 5: 2, "paper": 0, 9: 254}, ignore_index=254)
    assert names == ["Background", "foil", "can"] and cat_to_index == {7: 1, 5: 2, 2: 0, 9: 254}
    with pytest.raises(SegkitError, match=r"data.classes\[9\]: index 255 must be .* or 254"):
        class_index_map(CATS, {"foil": 1, 5: 2, "paper": 0, 9: 255}, ignore_index=254)
    assert class_index_map(CATS, ignore_index=5)[0][-1] == "glass"  # 5 classes: 0..4
    with pytest.raises(SegkitError) as info:
        class_index_map(CATS, ignore_index=3)
    assert str(info.value) == ("data.ignore_index=3 is the index of class 'foil' (classes are 0..4); choose a value "
                               "from 5 to 255 (default 255)")


def test_mapping_leaves_a_background_category_at_zero_unless_mapped():
    assert class_index_map(LABELME, {1: 1, 2: 2})[1] == {0: 0, 1: 1, 2: 2}
    assert class_index_map(LABELME, {0: 255, 1: 1, 2: 1})[1] == {0: 255, 1: 1, 2: 1}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["glas"], r"data.classes\[0\]: no category is named 'glas'.*glass"),
        ([3], r"data.classes\[0\]: 3 is neither a category name nor one of the category ids \[2, 5, 7, 9\]"),
        (["can", {"metal": ["foil", 5]}], r"data.classes\[1\]: category 'can' \(id 5\) is already in data.classes\[0"),
        ([{"metal": "can"}], r"data.classes\[0\]: a merged class is written \{'new name': \[categories\]\}"),
        ([{"a": ["can"], "b": ["foil"]}], "with one key"),
        ([], "data.classes is an empty list"),
        (["can", "Background"], "no category is named 'Background'"),
        ({"can": 1, "foil": 2, "glass": 3}, r"does not map the categories 'paper' \(id 2\); give each an index"),
        ({"can": 1, "foil": 3, "glass": 0, "paper": 0}, "indices must run 1..K without gaps, but 2 is unused"),
        ({"can": 1, "foil": 254, "glass": 0, "paper": 0}, r"data.classes\['foil'\]: index 254 must be an int"),
        ({"can": True, "foil": 1, "glass": 0, "paper": 0}, r"index True must be an int"),
        ({"can": 1, 5: 1, "glass": 0, "paper": 0}, r"category 'can' \(id 5\) is mapped twice"),
        ("can", "must be None, a list of category names or a"),
        ([{"paper": ["paper"]}, "can", {"can2": ["glass"]}, "foil", {"can": ["foil"]}], "already in"),
    ],
)
def test_bad_class_settings_name_the_key(classes, message):
    with pytest.raises(SegkitError, match=message):
        class_index_map(CATS, classes)


def test_class_names_must_stay_unique():
    with pytest.raises(SegkitError, match="data.classes: class name 'can' is used by classes 1 and 2"):
        class_index_map(CATS, [{"can": ["paper"]}, "can"])
    with pytest.raises(SegkitError, match="categories: class name 'a' is used by classes 1 and 2"):
        class_index_map([{"id": 3, "name": "a"}, {"id": 4, "name": "a"}])


def test_ambiguous_category_name_asks_for_ids():
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]
    with pytest.raises(SegkitError, match=r"category name 'a' is used by ids \[1, 2\]; refer to them by id"):
        class_index_map(cats, ["a"])
    assert class_index_map(cats, [{"a": [1, 2]}]) == (["Background", "a"], {1: 1, 2: 1})


def test_category_records_are_checked():
    with pytest.raises(SegkitError, match="category id 3 appears twice"):
        class_index_map([{"id": 3, "name": "a"}, {"id": 3, "name": "b"}])
    with pytest.raises(SegkitError, match=r"categories\[1\] must be a dict"):
        class_index_map([{"id": 3, "name": "a"}, {"name": "b"}])


def test_at_most_253_classes_besides_background():
    fits = [{"id": i, "name": f"c{i}"} for i in range(253)]
    assert len(class_index_map(fits)[0]) == 254
    with pytest.raises(SegkitError, match="254 classes and Background are more than the 254"):
        class_index_map([*fits, {"id": 999, "name": "one too many"}])
