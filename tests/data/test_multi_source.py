"""Several training sources: weighted epochs of fixed length, exact DDP shards, strict keys, shared classes."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from segkit.config import load_config
from segkit.data.demo import make_demo_dataset
from segkit.data.loader import build_dataloader, build_dataset
from segkit.data.multi_source import SourceSet
from segkit.data.sampling import EpochSampler, WeightedSources, sample_seed
from segkit.errors import SegkitError


@pytest.fixture(scope="module")
def second_demo(tmp_path_factory) -> Path:
    """Another synthetic set (seed 1): 6 train images at 64 px, its own image folder."""
    root = tmp_path_factory.mktemp("second_demo")
    make_demo_dataset(root, num_train=6, num_val=1, num_test=1, size=64, seed=1, progress=False)
    return root


def two_sources(second_demo: Path, weight: float = 0.5) -> str:
    return (f"data['train'].update(ann=None, sources=[dict(ann='train.json'), dict(ann='{second_demo}/train.json', "
            f"img_dir='{second_demo}/images', weight={weight})])\n")


def test_quotas_fix_the_epoch_length_and_each_image_is_drawn_floor_or_ceil_of_its_weight():
    plan = WeightedSources((8, 6, 5), (1.0, 0.5, 2.5))
    assert plan.quotas() == [8, 3, 13]  # 8 + 3 + 12.5 rounds to 24; the largest remainder gets the extra draw
    for epoch in range(4):
        indices, repeats = plan.draws(seed=7, epoch=epoch)
        counts = Counter(indices.tolist())
        assert len(indices) == 24
        assert all(counts[i] == 1 for i in range(8))  # weight 1: every labelled image once
        assert sorted(counts[i] for i in range(8, 14)) == [0, 0, 0, 1, 1, 1]  # weight 0.5: 3 of 6
        assert sorted(counts[i] for i in range(14, 19)) == [2, 2, 3, 3, 3]  # weight 2.5 of 5: 13 draws
        for i in set(indices.tolist()):  # the k-th copy of an image is repeat k: its own augmentation seed
            assert sorted(repeats[indices == i].tolist()) == list(range(counts[i]))
    halves = {tuple(plan.draws(seed=7, epoch=epoch)[0][8:11]) for epoch in range(6)}
    assert len(halves) > 1  # which half of the weight-0.5 source is drawn changes from epoch to epoch
    assert np.array_equal(plan.draws(7, 3)[0], plan.draws(7, 3)[0])  # a pure function of (seed, epoch)


def test_weights_of_one_give_the_single_source_permutation():
    plain = EpochSampler(14, shuffle=True, seed=3)
    weighted = EpochSampler(14, shuffle=True, seed=3, sources=WeightedSources((8, 6), (1.0, 1.0)))
    for epoch in (0, 5):
        plain.set_epoch(epoch)
        weighted.set_epoch(epoch)
        assert list(plain) == list(weighted)


def test_two_ranks_cover_each_epochs_samples_exactly_once_and_restart_mid_epoch():
    plan = WeightedSources((8, 6), (1.0, 0.5))  # 11 draws: one rank gets a padding repeat
    for sources in (plan, WeightedSources((8, 6), (1.0, 2.0))):  # 11 and 20 draws
        length = sum(sources.quotas())
        for epoch in range(3):
            full = EpochSampler(14, shuffle=True, seed=5, sources=sources)
            full.set_epoch(epoch)
            expected = list(full)
            assert len(expected) == length
            shards = []
            for rank in range(2):
                sampler = EpochSampler(14, shuffle=True, seed=5, rank=rank, world_size=2, sources=sources)
                sampler.set_epoch(epoch)
                shards.append(list(sampler))
            assert len(shards[0]) == len(shards[1]) == -(-length // 2)
            merged = [pair for step in zip(*shards) for pair in step]  # rank 0, rank 1, rank 0, ...
            assert merged[:length] == expected  # every draw exactly once; the rest is padding from the start
            assert merged[length:] == expected[: len(merged) - length]
            restarted = EpochSampler(14, shuffle=True, seed=5, rank=1, world_size=2, sources=sources)
            restarted.set_epoch(epoch, start=2)
            assert list(restarted) == shards[1][2:]
    seeds = [seed for index, seed in expected]
    assert len(set(seeds)) == len(seeds)  # two copies of one image are seeded differently
    assert sample_seed(5, 2, 9, 0) == sample_seed(5, 2, 9)


def test_build_dataset_concatenates_the_sources_and_the_loader_draws_weighted_epochs(tiny_config, second_demo):
    cfg = load_config(tiny_config(extra=two_sources(second_demo)))
    dataset = build_dataset(cfg, "train")
    assert isinstance(dataset, SourceSet) and len(dataset) == 14 and dataset.keys[1] == "data.train.sources[1]"
    assert dataset.classes == dataset.parts[1].classes
    assert dataset.parts[0].pipeline is dataset.parts[1].pipeline is dataset.pipeline  # one seeded pipeline
    assert dataset.load_raw(8)[2]["file_name"] == dataset.parts[1].images[0]["file_name"]
    assert np.array_equal(dataset.mask(13), dataset.parts[1].mask(5))
    loader = build_dataloader(cfg, "train", dataset, seed=cfg.train.seed)
    assert len(loader.sampler) == 11 and len(loader) == 2  # 8 + 3 draws, batch 4, last partial batch dropped
    loader.sampler.set_epoch(0)
    batches = list(loader)
    assert all(batch["mask"].shape[1:] == (64, 64) for batch in batches)
    ranks = [build_dataloader(cfg, "train", dataset, seed=cfg.train.seed, rank=r, world_size=2).sampler
             for r in range(2)]
    for sampler in (*ranks, loader.sampler):
        sampler.set_epoch(3)
    merged = [pair for step in zip(*ranks) for pair in step]
    assert merged[:11] == list(loader.sampler) and len(merged) == 12  # the DDP loaders shard the same draws


def test_copy_paste_takes_donors_from_every_source(tiny_config, second_demo):
    cfg = load_config(tiny_config(extra=two_sources(second_demo)
                                  + "data['train'].update(copy_paste=dict(classes=['Metal'], p=1.0))\n"))
    dataset = build_dataset(cfg, "train")
    donors = dataset.donors[dataset.classes.index("Metal")][:, 0]
    assert (donors < 8).any() and (donors >= 8).any()
    sample = dataset[9]
    assert sample["mask"].shape == (64, 64)


def test_strict_source_keys_and_the_data_train_ann_rule(tiny_config, second_demo, tmp_path):
    bad = tiny_config(name="typo.py", extra="data['train'].update(ann=None, sources=[dict(ann='train.json', wieght=2)])\n")
    with pytest.raises(SegkitError, match=r"typo.py: unknown key 'data.train.sources\[0\].wieght'; did you mean "
                                          r"'weight'"):
        load_config(bad)
    with pytest.raises(SegkitError, match=r"data.train.sources\[1\].weight must be a positive number, got -1"):
        load_config(tiny_config(name="neg.py", extra="data['train'].update(ann=None, sources=[dict(ann='a.json'), "
                                                     "dict(ann='b.json', weight=-1)])\n"))
    with pytest.raises(SegkitError, match=r"data.train.sources\[0\] needs 'ann'"):
        load_config(tiny_config(name="noann.py", extra="data['train'].update(ann=None, sources=[dict(weight=1)])\n"))
    both = load_config(tiny_config(name="both.py", extra="data['train'].update(sources=[dict(ann='train.json')])\n"))
    with pytest.raises(SegkitError, match=r"both.py: data.train.sources lists the training jsons, so data.train.ann "
                                          r"must be None \(it is 'train.json'\)"):
        build_dataset(both, "train")
    missing = load_config(tiny_config(name="missing.py", extra="data['train'].update(ann=None, sources=["
                                                               "dict(ann='train.json'), dict(ann='nope.json')])\n"))
    with pytest.raises(SegkitError, match=r"data.train.sources\[1\].ann: annotation file .*nope.json not found"):
        build_dataset(missing, "train")


def test_a_source_with_other_categories_is_refused_naming_both(tiny_config, second_demo, tmp_path):
    coco = json.loads((second_demo / "train.json").read_text())
    coco["categories"] = coco["categories"][:-1]  # no "Plastic bag"
    coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] != 5]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(coco))
    cfg = load_config(tiny_config(extra=f"data['train'].update(ann=None, sources=[dict(ann='train.json'), "
                                        f"dict(ann='{other}', img_dir='{second_demo}/images')])\n"))
    with pytest.raises(SegkitError) as err:
        build_dataset(cfg, "train")
    text = str(err.value)
    assert "data.train.sources[1]" in text and str(other) in text and "data.train.sources[0]" in text
    assert "'Plastic bag'" in text and "same class list" in text


def test_the_trainer_refuses_a_source_holding_a_validation_image_under_another_name(tiny_config, tiny_demo,
                                                                                    second_demo, tmp_path):
    from segkit.engine.trainer import Trainer

    images = tmp_path / "copied"
    images.mkdir()
    val = json.loads((tiny_demo / "val.json").read_text())
    coco = json.loads((second_demo / "train.json").read_text())
    first = coco["images"][0]
    (images / "renamed.jpg").write_bytes((tiny_demo / "images" / val["images"][2]["file_name"]).read_bytes())
    for other in coco["images"][1:]:
        target = images / other["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((second_demo / "images" / other["file_name"]).read_bytes())
    first["file_name"] = "renamed.jpg"
    leaky = tmp_path / "leaky.json"
    leaky.write_text(json.dumps(coco))
    cfg = load_config(tiny_config(extra=f"data['train'].update(ann=None, sources=[dict(ann='train.json'), "
                                        f"dict(ann='{leaky}', img_dir='{images}', weight=0.5)])\n"))
    with pytest.raises(SegkitError) as err:
        Trainer(cfg, tmp_path / "w", torch.device("cpu"), progress=False)
    text = str(err.value)
    assert text.startswith("1 of the 6 images of data.train.sources[1]")
    assert f"renamed.jpg is {val['images'][2]['file_name']}, the same content" in text

    images_of_val = tmp_path / "val_copy.json"  # another json listing the validation images themselves
    kept = {img["id"] for img in val["images"][:3]}
    images_of_val.write_text(json.dumps({**val, "images": val["images"][:3],
                                         "annotations": [a for a in val["annotations"] if a["image_id"] in kept]}))
    same_file = load_config(tiny_config(name="same.py", extra=f"data['train'].update(ann='{images_of_val}')\n"))
    with pytest.raises(SegkitError, match=r"3 of the 3 images of data.train.ann .* are validation images .*"
                                          r"the same file"):
        Trainer(same_file, tmp_path / "w2", torch.device("cpu"), progress=False)


def test_training_on_the_validation_json_itself_is_a_warning_not_a_leak(tiny_config, tmp_path):
    from segkit.engine.trainer import Trainer

    cfg = load_config(tiny_config(name="smoke.py", extra="data['train'].update(ann='val.json')\n"))
    Trainer(cfg, tmp_path / "w", torch.device("cpu"), progress=False)
    assert "data.train.ann and data.val.ann are the same json" in (tmp_path / "w" / "train.log").read_text()


def test_the_validation_json_among_several_sources_is_a_leak_not_a_smoke_test(tiny_config):
    from segkit.data.leak_guard import check_training_sources

    cfg = load_config(tiny_config(extra="data['train'].update(ann=None, sources=[dict(ann='train.json'), "
                                        "dict(ann='val.json', weight=3)])\n"))
    with pytest.raises(SegkitError, match=r"4 of the 4 images of data.train.sources\[1\] .* are validation images "
                                          r".*the same file"):
        check_training_sources(build_dataset(cfg, "train"), build_dataset(cfg, "val"), cfg.data)


def test_k_fold_training_needs_one_training_json(tiny_config, second_demo, tmp_path):
    from segkit.experiments.kfold_training import FoldPlan, prepare_folds

    cfg = load_config(tiny_config(name="kfold.py", extra=two_sources(second_demo)))
    with pytest.raises(SegkitError, match=r"kfold.py: k-fold training splits data.train.ann, not data.train.sources"):
        prepare_folds(cfg, FoldPlan(root=tmp_path / "folds", folds=2))
