"""Interoperability with plain segmentation-models-pytorch: its ``save_pretrained`` folder both ways.

:func:`export_smp_folder` writes a segkit checkpoint of an smp architecture as the folder that
``segmentation_models_pytorch.from_pretrained(DIR)`` loads (``config.json`` + ``model.safetensors`` +
``README.md``), with segkit's class names and normalisation under the ``_segkit`` key of the config (smp
drops ``_``-prefixed keys before building) and in the model card. ``model=dict(type="SMPPretrained",
path=DIR)`` starts a segkit model from such a folder, whoever wrote it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
from safetensors.torch import load_file
from torch import nn

from segkit import __version__
from segkit.engine.checkpoint import evaluated_weights, load_checkpoint
from segkit.errors import SegkitError
from segkit.models.smp_models import SMP_ARCHITECTURES, SmpArchitecture, wrap_smp
from segkit.registry import MODELS

logger = logging.getLogger("segkit")
SEGKIT_KEYS = ("type", "num_classes", "pretrained", "freeze_encoder", "freeze_bn")


def _spec_of(smp_class: str) -> SmpArchitecture:
    return next(spec for spec in SMP_ARCHITECTURES.values() if spec.smp_class == smp_class)


def read_smp_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a ``save_pretrained`` folder, checked to name an smp architecture segkit knows."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SegkitError(f"model.path={str(folder)!r}: no readable config.json ({type(err).__name__}); give a "
                          "folder written by smp's save_pretrained or `tools/export.py --format smp`") from err
    known = sorted({spec.smp_class for spec in SMP_ARCHITECTURES.values()})
    if config.get("_model_class") not in known:
        raise SegkitError(f"model.path={str(folder)!r}: config.json names _model_class="
                          f"{config.get('_model_class')!r}; segkit loads {', '.join(known)}")
    return config


@MODELS.register()
def SMPPretrained(num_classes: int, path: str) -> nn.Module:
    """An smp model saved by ``save_pretrained`` at ``path``, padded like segkit's own types.

    With another class count than the folder's, every tensor but the segmentation head's is loaded (fine-
    tuning on new classes); DPT gets ``dynamic_img_size=True`` unless the folder says otherwise.
    """
    config = read_smp_config(path)
    spec = _spec_of(config["_model_class"])
    init = {**spec.defaults, **{k: v for k, v in config.items() if not k.startswith("_")},
            "encoder_weights": None, "classes": num_classes}
    net = getattr(smp, config["_model_class"])(**init)
    try:
        saved = load_file(Path(path) / "model.safetensors")
    except (OSError, ValueError) as err:
        raise SegkitError(f"model.path={path!r}: model.safetensors cannot be read ({type(err).__name__}); the "
                          "folder is incomplete") from err
    target = net.state_dict()
    matched = {k: v for k, v in saved.items() if k in target and target[k].shape == v.shape}
    skipped = sorted(set(target) - set(matched))
    if any(not key.startswith("segmentation_head.") for key in skipped) or set(saved) - set(target):
        raise SegkitError(f"model.path={path!r}: model.safetensors does not fit its config.json (e.g. "
                          f"{(skipped or sorted(set(saved) - set(target)))[0]}); the folder is inconsistent")
    net.load_state_dict(matched, strict=False)
    if skipped:
        logger.info("model.path=%s: saved for %s classes, built for %d: segmentation head starts from scratch",
                    path, config.get("classes"), num_classes)
    return wrap_smp(net, spec)


def _smp_init(model_cfg: Mapping[str, Any], num_classes: int) -> tuple[str, dict[str, Any]]:
    """(smp class, constructor arguments) of a segkit model section, with no weights to download."""
    if model_cfg.get("type") == "SMPPretrained":
        config = read_smp_config(model_cfg["path"])
        init = {**_spec_of(config["_model_class"]).defaults,
                **{k: v for k, v in config.items() if not k.startswith("_")}}
        return config["_model_class"], {**init, "encoder_weights": None, "classes": num_classes}
    spec = SMP_ARCHITECTURES[model_cfg["type"]]
    init = {**spec.defaults, **{k: v for k, v in model_cfg.items() if k not in SEGKIT_KEYS}}
    init.setdefault("encoder_name", spec.default_encoder)
    return spec.smp_class, {**init, "encoder_weights": None, "classes": num_classes}


def export_smp_folder(checkpoint: Path, out_dir: Path) -> Path:
    """Write ``checkpoint`` (a segkit checkpoint of an smp architecture) as an smp ``save_pretrained`` folder.

    The folder is written next to ``out_dir`` and renamed into place, so a failure leaves nothing half
    written; an ``out_dir`` that holds files is refused.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    state = load_checkpoint(checkpoint)
    config, classes = state.get("config"), state.get("classes")
    if not isinstance(config, Mapping) or not isinstance(classes, list):
        raise SegkitError(f"{checkpoint} holds no config or class list; export a checkpoint written by a segkit run")
    model_type = config["model"].get("type")
    if model_type not in SMP_ARCHITECTURES and model_type != "SMPPretrained":
        raise SegkitError(f"{checkpoint}: model.type={model_type!r} is not an smp architecture; --format smp "
                          f"exports {', '.join(sorted(SMP_ARCHITECTURES))} and SMPPretrained (use ONNX for others)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SegkitError(f"--out {out_dir} exists and is not an empty folder; choose a new folder")
    smp_class, init = _smp_init(config["model"], len(classes))
    net = getattr(smp, smp_class)(**init)
    weights = {k.removeprefix("net."): v for k, v in evaluated_weights(state).items()}
    result = net.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise SegkitError(f"{checkpoint}: weights do not fit smp {smp_class} (unexpected "
                          f"{result.unexpected_keys[0]}); was the checkpoint written by this segkit version?")
    data = config.get("data", {})
    extra = {"classes": classes, "mean": list(data.get("mean", ())), "std": list(data.get("std", ())),
             "pixel_scale": "0-255 RGB: input = (image - mean) / std", "segkit_type": model_type,
             "source": checkpoint.name, "segkit_version": __version__}
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        net.eval().save_pretrained(tmp, dataset=str(data.get("root", "")))
        _add_segkit_section(tmp, extra)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _add_segkit_section(folder: Path, extra: dict[str, Any]) -> None:
    """The classes and normalisation into config.json (``_segkit``) and the model card."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["_segkit"] = extra
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = folder / "README.md"
    names = ", ".join(f"{i}: {name}" for i, name in enumerate(extra["classes"]))
    with card.open("a", encoding="utf-8") as handle:
        handle.write(f"\n## segkit\n\nExported from `{extra['source']}` ({extra['segkit_type']}, segkit "
                     f"{extra['segkit_version']}).\n\n- Classes (output channel: name): {names}\n"
                     f"- Input: RGB, 0-255, normalised as `(image - mean) / std` with mean {extra['mean']} and "
                     f"std {extra['std']}; any size whose sides are multiples of the encoder's output stride\n")
