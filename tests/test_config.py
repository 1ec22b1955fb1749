from __future__ import annotations

import copy
import pickle
import textwrap
from pathlib import Path

import pytest

from segkit.config import DEFAULTS, Config, config_from_dict, load_config, parse_overrides
from segkit.errors import SegkitError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(SegkitError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- inheritance and merging ----------------------------------------------------------------------------


def test_bases_list_and_str_nested_two_levels_relative_to_each_file(tmp_path):
    write(tmp_path / "configs/_base_/runtime.py", "train = dict(epochs=3, seed=1)\n")
    write(tmp_path / "configs/_base_/data.py", """
        _base_ = "runtime.py"
        data = dict(root="/d", batch_size=4, train=dict(ann="a.json"))
        train = dict(seed=2)
    """)
    write(tmp_path / "configs/_base_/model.py", "model = dict(type='Unet', encoder_name='resnet18')\n")
    cfg_path = write(tmp_path / "configs/exp/sub/run.py", """
        _base_ = ["../../_base_/data.py", "../../_base_/model.py"]
        data = dict(batch_size=2)
    """)
    cfg = load_config(cfg_path)
    assert cfg.train.epochs == 3 and cfg.train.seed == 2  # nested base, then the base that includes it
    assert cfg.data.root == "/d" and cfg.data.batch_size == 2 and cfg.data.train.ann == "a.json"
    assert cfg.data.train.pipeline == [] and cfg.data.val.ann == "val.json"  # defaults fill the rest
    assert cfg.model == {"type": "Unet", "encoder_name": "resnet18", "num_classes": None}
    assert cfg.source == str(cfg_path)


def test_later_base_wins_and_file_wins_over_bases(tmp_path):
    write(tmp_path / "a.py", "train = dict(epochs=1, seed=1)\n")
    write(tmp_path / "b.py", "train = dict(epochs=2)\n")
    cfg = load_config(write(tmp_path / "c.py", "_base_ = ['a.py', 'b.py']\ntrain = dict(seed=3)\n"))
    assert (cfg.train.epochs, cfg.train.seed) == (2, 3)


def test_deep_merge_keeps_siblings_and_replaces_lists(tmp_path):
    write(tmp_path / "base.py", """
        model = dict(type="Unet", aux=dict(dropout=0.1, classes=3), layers=[1, 2, 3])
    """)
    cfg = load_config(write(tmp_path / "c.py", """
        _base_ = "base.py"
        model = dict(aux=dict(dropout=0.5), layers=[9])
    """))
    assert cfg.model.aux == {"dropout": 0.5, "classes": 3}
    assert cfg.model.layers == [9]


def test_delete_replaces_the_base_dict_and_is_removed(tmp_path):
    write(tmp_path / "base.py", "model = dict(type='Unet', encoder_name='resnet18', aux=dict(a=1, b=2))\n")
    cfg = load_config(write(tmp_path / "c.py", """
        _base_ = "base.py"
        model = dict(type="Unet", aux=dict(_delete_=True, c=3))
    """))
    assert cfg.model.aux == {"c": 3}
    assert cfg.model.encoder_name == "resnet18"
    cfg = load_config(write(tmp_path / "d.py", """
        _base_ = "base.py"
        model = dict(_delete_=True, type="FPN", extra=dict(_delete_=False, x=1))
    """))
    assert cfg.model == {"type": "FPN", "extra": {"x": 1}, "num_classes": None}


def test_an_empty_file_is_exactly_the_defaults_and_defaults_are_not_mutated(tmp_path):
    before = copy.deepcopy(DEFAULTS)
    cfg = load_config(write(tmp_path / "empty.py", ""))
    assert cfg.to_dict() == DEFAULTS
    cfg.data.train.pipeline.append({"type": "HorizontalFlip"})
    cfg.model.num_classes = 12
    assert DEFAULTS == before
    assert load_config(tmp_path / "empty.py").data.train.pipeline == []


def test_helpers_imports_functions_and_classes_are_not_config(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", """
        import os
        from collections import OrderedDict
        _crop = 256
        _here = os.path.dirname(__file__)
        def _helper():
            return 1
        def scale(x):
            return 2 * x
        class Thing:
            pass
        data = dict(root=os.path.join(_here, "data"), train=dict(pipeline=[dict(type="Crop", height=_crop)]))
        train = dict(epochs=scale(2))
    """))
    assert set(cfg) == set(DEFAULTS)
    assert cfg.data.root == str(tmp_path / "data")
    assert cfg.train.epochs == 4


# --- the open-section type rule -------------------------------------------------------------------------


def test_changing_an_open_section_type_drops_the_default_arguments(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", """
        scheduler = dict(type="Step", step_size=3)
        optimizer = dict(type="SGD", lr=0.1, momentum=0.9)
        model = dict(type="FPN", encoder_name="resnet34")
    """))
    assert cfg.scheduler == {"type": "Step", "step_size": 3}
    assert cfg.optimizer == {"type": "SGD", "lr": 0.1, "momentum": 0.9}
    assert cfg.model == {"type": "FPN", "encoder_name": "resnet34", "num_classes": None}


def test_keeping_an_open_section_type_merges_with_the_defaults(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", """
        scheduler = dict(warmup_iters=100, x=True)
        optimizer = dict(type="AdamW", lr=3e-4)
    """))
    assert cfg.scheduler == {"type": "CosineWarmup", "warmup_iters": 100, "min_lr_ratio": 0.0, "x": True}
    assert cfg.optimizer == {"type": "AdamW", "lr": 3e-4, "weight_decay": 1e-2}


# --- overrides ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("a=1", 1),
        ("a=-2", -2),
        ("a=1.5", 1.5),
        ("a=1e-4", 1e-4),
        ("a=(512, 512)", (512, 512)),
        ("a=[1,2]", [1, 2]),
        ("a='x'", "x"),
        ('a="two words"', "two words"),
        ("a=Unet", "Unet"),
        ("a=/data/trash", "/data/trash"),
        ("a=0755", "0755"),
        ("a=True", True),
        ("a=False", False),
        ("a=None", None),
        ("a={'type': 'Dice'}", {"type": "Dice"}),
        (" a = 3 ", 3),
    ],
)
def test_parse_override_values(item, value):
    parsed = parse_overrides([item])["a"]
    assert parsed == value and type(parsed) is type(value)


def test_parse_overrides_nests_dotted_keys_and_later_items_win():
    parsed = parse_overrides(["data.train.ann=x.json", "data.batch_size=4", "model=1", "model.depth=3"])
    assert parsed == {"data": {"train": {"ann": "x.json"}, "batch_size": 4}, "model": {"depth": 3}}


@pytest.mark.parametrize("item", ["data.batch_size", "=3", "data..root=x", "data.=x"])
def test_parse_overrides_rejects_items_without_a_key(item):
    with pytest.raises(SegkitError, match="KEY=VALUE"):
        parse_overrides([item])


def test_overrides_merge_last_and_may_add_keys_to_open_sections(tmp_path):
    path = write(tmp_path / "c.py", "data = dict(batch_size=4)\nmodel = dict(type='Unet')\n")
    cfg = load_config(path, ["data.batch_size=16", "data.root=/abs/path", "model.encoder_depth=4",
                             "model.aux_params.dropout=0.2", "train.amp=True", "data.mean=(0.0, 0.0, 0.0)"])
    assert cfg.data.batch_size == 16 and cfg.data.root == "/abs/path"
    assert cfg.model.to_dict() == {"type": "Unet", "num_classes": None, "encoder_depth": 4,
                                   "aux_params": {"dropout": 0.2}}
    assert cfg.train.amp is True and cfg.data.mean == (0.0, 0.0, 0.0)


def test_override_can_delete_and_switch_type(tmp_path):
    path = write(tmp_path / "c.py", "scheduler = dict(type='Poly', power=0.9)\n")
    cfg = load_config(path, ["scheduler={'_delete_': True, 'type': 'Step', 'step_size': 2}"])
    assert cfg.scheduler == {"type": "Step", "step_size": 2}


def test_bad_override_key_names_the_file_set_item_and_hint(tmp_path):
    path = write(tmp_path / "c.py", "")
    message = load_error(path, ("train.epochs=2", "data.batchsize=4"))
    assert str(path) in message and "--set data.batchsize=4" in message
    assert "unknown key 'data.batchsize'" in message and "did you mean 'batch_size'" in message
    message = load_error(path, ("optimiser.lr=0.1",))
    assert "unknown key 'optimiser'" in message and "did you mean 'optimizer'" in message


def test_bad_override_value_names_key_and_value(tmp_path):
    message = load_error(write(tmp_path / "c.py", ""), ("train.amp=yes",))
    assert "--set train.amp=yes" in message and "train.amp must be False, True, 'fp16' or 'bf16', got 'yes'" in message


# --- the Config object ----------------------------------------------------------------------------------


def test_attribute_access_lists_of_dicts_and_plain_to_dict(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", """
        data = dict(train=dict(pipeline=[dict(type="HorizontalFlip", p=0.5)]), mean=(1.0, 2.0, 3.0))
    """))
    assert isinstance(cfg.data, Config) and isinstance(cfg.data.train.pipeline[0], Config)
    assert cfg.data.train.pipeline[0].p == 0.5
    assert "source" not in cfg
    cfg.train.epochs = 5
    cfg.extra = {"a": {"b": 1}}
    assert cfg["train"]["epochs"] == 5 and cfg.extra.a.b == 1
    plain = cfg.to_dict()
    assert type(plain) is dict and type(plain["data"]["train"]["pipeline"][0]) is dict
    assert type(plain["extra"]["a"]) is dict and plain["data"]["mean"] == (1.0, 2.0, 3.0)
    with pytest.raises(AttributeError, match="did you mean 'batch_size'"):
        _ = cfg.data.batchsize
    assert not hasattr(cfg, "nope")


def test_get_path(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", "data = dict(train=dict(pipeline=[dict(type='Flip')]))\n"))
    assert cfg.get_path("data.train.ann") == "train.json"
    assert cfg.get_path("data.train.pipeline.0.type") == "Flip"
    assert cfg.get_path("data.train.nope", default=7) == 7
    with pytest.raises(SegkitError, match=r"c\.py: no key 'data\.trian\.ann'.*did you mean 'train'"):
        cfg.get_path("data.trian.ann")


def test_copy_and_pickle_keep_source_and_structure(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", "data = dict(train=dict(pipeline=[dict(type='Flip')]))\n"))
    for clone in (copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg))):
        assert clone == cfg and clone.source == cfg.source and clone.data.source == cfg.source
        assert isinstance(clone.data.train.pipeline[0], Config)


def test_dump_round_trip(tmp_path):
    write(tmp_path / "base.py", "data = dict(root='/d', train=dict(pipeline=[dict(type='Pad', size=5)]))\n")
    cfg = load_config(write(tmp_path / "c.py", """
        _base_ = "base.py"
        model = dict(type="Unet", encoder_name="x" * 150, aux_params=dict(classes=12, dropout=0.2))
        loss = dict(type="Focal", class_weights={0: 0.5, 3: 2.0})
    """), ["train.grad_clip=1.0"])
    out = tmp_path / "work" / "config.py"
    cfg.dump(out)
    text = out.read_text()
    assert text.startswith("# Resolved segkit config") and "_base_" not in text
    assert "model = {" in text and "train = {" in text
    again = load_config(out)
    assert again == cfg and again.data.mean == (123.675, 116.28, 103.53)
    assert [p.name for p in out.parent.iterdir()] == ["config.py"]  # no temporary file left behind


def test_dump_refuses_values_that_would_not_load_back(tmp_path):
    cfg = load_config(write(tmp_path / "c.py", "train = dict(grad_clip=float('inf'))\n"))
    out = tmp_path / "config.py"
    with pytest.raises(SegkitError, match="cannot dump 'train'"):
        cfg.dump(out)
    assert list(tmp_path.iterdir()) == [tmp_path / "c.py"]


# --- errors ---------------------------------------------------------------------------------------------


def test_missing_file_and_missing_base_name_the_referrer(tmp_path):
    assert "nope.py: config file not found" in load_error(tmp_path / "nope.py")
    path = write(tmp_path / "sub/c.py", "_base_ = ['../base/missing.py']\n")
    message = load_error(path)
    assert str(tmp_path / "base/missing.py") in message and f"referenced by _base_ in {path}" in message


def test_syntax_error_gives_file_and_line(tmp_path):
    path = write(tmp_path / "c.py", "data = dict(\n    batch_size=4,\n    root=\n)\n")
    message = load_error(path)
    assert message.startswith(f"{path}:") and "syntax error" in message
    assert message.split(":")[1] in {"3", "4"}


def test_exception_while_executing_gives_file_line_type_and_message(tmp_path):
    path = write(tmp_path / "c.py", "x = 1\ndata = dict(batch_size=undefined_name)\n")
    message = load_error(path)
    assert message.startswith(f"{path}:2: error while executing: NameError:") and "undefined_name" in message


def test_base_cycle_shows_the_chain(tmp_path):
    write(tmp_path / "a.py", "_base_ = 'b.py'\n")
    write(tmp_path / "b.py", "_base_ = './a.py'\n")
    message = load_error(tmp_path / "a.py")
    assert f"_base_ cycle: {tmp_path}/a.py -> {tmp_path}/b.py -> {tmp_path}/a.py" in message


@pytest.mark.parametrize("bases", ["3", "['a.py', 3]", "dict(a=1)"])
def test_base_must_be_str_or_list_of_str(tmp_path, bases):
    path = write(tmp_path / "c.py", f"_base_ = {bases}\n")
    message = load_error(path)
    assert str(path) in message and "_base_ must be a str or a list of str" in message


def test_unknown_top_level_key_names_file_and_hint(tmp_path):
    path = write(tmp_path / "c.py", "optimiser = dict(type='SGD', lr=0.1)\n")
    assert load_error(path) == f"{path}: unknown key 'optimiser'; did you mean 'optimizer'?"
    message = load_error(write(tmp_path / "d.py", "from math import pi\n"))
    assert "unknown key 'pi'" in message and "valid keys: work_dir, data" in message and "'_'" in message


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("data = dict(batchsize=4)", "data.batchsize", "batch_size"),
        ("data = dict(train=dict(anns='x.json'))", "data.train.anns", "ann"),
        ("data = dict(test=dict(pipline=[]))", "data.test.pipline", "pipeline"),
        ("train = dict(epoch=3)", "train.epoch", "epochs"),
    ],
)
def test_unknown_key_in_closed_section(tmp_path, text, key, hint):
    path = write(tmp_path / "c.py", text + "\n")
    assert load_error(path).startswith(f"{path}: unknown key {key!r}; did you mean {hint!r}")


def test_unknown_key_in_a_base_names_the_base_file(tmp_path):
    base = write(tmp_path / "_base_/data.py", "data = dict(num_worker=2)\n")
    message = load_error(write(tmp_path / "c.py", "_base_ = '_base_/data.py'\n"))
    assert message.startswith(f"{base}: unknown key 'data.num_worker'") and "'num_workers'" in message


@pytest.mark.parametrize(
    ("text", "key", "shown"),
    [
        ("data = dict(batch_size=0)", "data.batch_size", "0"),
        ("data = dict(batch_size='8')", "data.batch_size", "'8'"),
        ("data = dict(batch_size=True)", "data.batch_size", "True"),
        ("data = dict(val_batch_size=2.0)", "data.val_batch_size", "2.0"),
        ("data = dict(num_workers=-1)", "data.num_workers", "-1"),
        ("data = dict(train=dict(pipeline=dict(type='Flip')))", "data.train.pipeline", "{'type': 'Flip'}"),
        ("train = dict(epochs=1.5)", "train.epochs", "1.5"),
        ("train = dict(val_interval=0)", "train.val_interval", "0"),
        ("train = dict(accumulate=None)", "train.accumulate", "None"),
        ("train = dict(amp=1)", "train.amp", "1"),
        ("optimizer = dict(lr=0)", "optimizer.lr", "0"),
        ("optimizer = dict(type='SGD', lr='fast')", "optimizer.lr", "'fast'"),
        ("loss = dict(type=None)", "loss.type", "None"),
        ("model = 'Unet'", "model", "'Unet'"),
        ("test = dict(mode='tiles')", "test.mode", "'tiles'"),
        ("test = dict(crop=0)", "test.crop", "0"),
    ],
)
def test_wrong_value_types_name_key_and_value(tmp_path, text, key, shown):
    path = write(tmp_path / "c.py", text + "\n")
    message = load_error(path)
    assert message.startswith(f"{path}: {key} must be") and message.endswith(f"got {shown}")


def test_values_that_are_not_plain_data_are_rejected(tmp_path):
    path = write(tmp_path / "c.py", "from pathlib import Path\nwork_dir = Path('runs')\n")
    assert "work_dir is a PosixPath" in load_error(path)
    path = write(tmp_path / "d.py", "import numpy as np\nmodel = dict(type='Unet', w=[np.float32(1)])\n")
    message = load_error(path)
    assert str(path) in message and "model.w[0] is a float32" in message


def test_a_stored_config_gets_new_defaults_overrides_and_the_same_checks(tmp_path):
    stored = load_config(write(tmp_path / "c.py", "train = dict(epochs=3)\n")).to_dict()
    del stored["test"]  # a checkpoint written before the section existed
    cfg = config_from_dict(stored, "run/best.pth (stored config)", ["test.mode=slide", "test.crop=64"])
    assert cfg.train.epochs == 3 and (cfg.test.mode, cfg.test.crop, cfg.test.stride) == ("slide", 64, None)
    assert cfg.source == "run/best.pth (stored config)"
    with pytest.raises(SegkitError, match=r"run/best.pth \(stored config\): unknown key 'data.batchsize'"):
        config_from_dict({**stored, "data": {**stored["data"], "batchsize": 2}}, "run/best.pth (stored config)")


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluation_pipelines_are_refused_and_test_resize_is_checked(tmp_path, split):
    """test.py used data.val.pipeline while infer_tta.py ignored data.test.pipeline: one contract, no pipeline."""
    path = write(tmp_path / "c.py", f"data = dict({split}=dict(pipeline=[dict(type='Resize', height=8, width=8)]))\n")
    message = load_error(path)
    assert f"data.{split}.pipeline must be []" in message and "test.resize" in message
    assert "test.resize must be None or (H, W)" in load_error(write(tmp_path / "r.py", "test = dict(resize=64)\n"))
    assert "test.resize" not in load_error(write(tmp_path / "ok.py", "test = dict(resize=(64, 48))\noops = 1\n"))
