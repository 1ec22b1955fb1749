from __future__ import annotations

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata
from torch.utils.tensorboard import SummaryWriter

from segkit.visualization.tensorboard import hparams_from_config, log_figures, log_hparams, log_metrics, log_panels

CFG = {
    "model": {"type": "Unet", "encoder_name": "resnet18", "decoder_channels": (32, 16), "num_classes": None},
    "loss": {"type": "Focal", "gamma": 2.0},
    "optimizer": {"type": "AdamW", "lr": 1e-3},
    "scheduler": {"type": "CosineWarmup"},
    "data": {"batch_size": 8, "root": "data/x",
             "train": {"pipeline": [{"type": "HorizontalFlip"}, {"type": "Affine"}]}},
    "train": {"epochs": 40, "seed": 42, "amp": False, "device": "auto"},
}


def test_hparams_are_flat_scalars_with_the_augmentations_named():
    hp = hparams_from_config(CFG)
    assert hp["model.type"] == "Unet" and hp["model.encoder_name"] == "resnet18"
    assert hp["model.decoder_channels"] == "(32, 16)" and hp["model.num_classes"] == "None"
    assert hp["optimizer.lr"] == 1e-3 and hp["loss.type"] == "Focal" and hp["loss.gamma"] == 2.0
    assert hp["data.batch_size"] == 8 and hp["train.epochs"] == 40 and hp["train.seed"] == 42
    assert hp["train.amp"] == "False" and hp["data.train.pipeline"] == "HorizontalFlip,Affine"
    assert "data.root" not in hp and "train.device" not in hp


def test_one_validation_and_the_hparams_land_in_the_run_itself(tmp_path):
    metrics = {"mIoU": 0.5, "mAcc": 0.6, "aAcc": 0.9, "mDice": None, "IoU": {"a b": 0.5, "c": None},
               "Acc": {"a b": 0.6, "c": None}}
    with SummaryWriter(str(tmp_path)) as writer:
        log_metrics(writer, metrics, 3)
        log_figures(writer, torch.tensor([[5, 1], [0, 0]]), metrics, 3, caption="epoch 1")
        log_panels(writer, [("val/samples/x", np.zeros((4, 5, 3), np.uint8))], 3)
        log_hparams(writer, hparams_from_config(CFG), {"hparams/best_mIoU": 0.5}, 3)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # no timestamped sub-run

    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"val/mIoU", "val/mAcc", "val/aAcc", "val/IoU/a b", "val/Acc/a b", "hparams/best_mIoU"} <= scalars
    assert "val/mDice" not in scalars and "val/IoU/c" not in scalars
    assert set(events.Tags()["images"]) == {"val/confusion_matrix", "val/per_class_iou", "val/samples/x"}
    content = events.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    assert hp_metadata.EXPERIMENT_TAG not in content
    start = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.type"].string_value == "Unet"
    assert start.hparams["optimizer.lr"].number_value == 1e-3
