import logging

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from segkit.errors import SegkitError
from segkit.models.builder import build_model
from segkit.models.parts import decoder_parameters, encoder_parameters, encoder_stages

UNET = {"type": "Unet", "encoder_name": "resnet18", "encoder_weights": None,
        "decoder_channels": (16, 8, 8, 8, 8)}
HRNET = {"type": "HRNetOCR", "backbone": "hrnet_w18_small", "encoder_weights": None,
         "ocr_mid_channels": 16, "ocr_key_channels": 8}


def ids(params):
    return {id(p) for p in params}


@pytest.mark.parametrize("cfg", [UNET, HRNET])
def test_encoder_and_decoder_parameters_partition_the_model(cfg):
    model = build_model(cfg, num_classes=3)
    encoder, decoder = ids(encoder_parameters(model)), ids(decoder_parameters(model))
    assert encoder == ids(model.net.encoder.parameters())
    assert encoder and decoder and not encoder & decoder
    assert encoder | decoder == ids(model.parameters())
    stages = encoder_stages(model)
    assert len(stages) == 5
    assert set().union(*(ids(s) for s in stages)) == encoder  # every encoder parameter has a stage
    assert sum(len(s) for s in stages) == len(encoder)  # and only one


def test_resnet_stages_follow_the_feature_strides():
    model = build_model(UNET, num_classes=3)
    names = {id(p): n for n, p in model.named_parameters()}
    stages = [{names[id(p)].split(".")[2] for p in stage} for stage in encoder_stages(model)]
    assert stages == [{"conv1", "bn1"}, {"layer1"}, {"layer2"}, {"layer3"}, {"layer4"}]


def test_freeze_encoder_whole_or_first_stages():
    model = build_model({**UNET, "freeze_encoder": True}, num_classes=3)
    assert not any(p.requires_grad for p in encoder_parameters(model))
    assert all(p.requires_grad for p in decoder_parameters(model))

    model = build_model({**UNET, "freeze_encoder": 2}, num_classes=3)
    stages = encoder_stages(model)
    assert not any(p.requires_grad for stage in stages[:2] for p in stage)
    assert all(p.requires_grad for stage in stages[2:] for p in stage)
    model.train()
    assert not model.net.encoder.layer1[0].bn1.training  # a frozen stage keeps its statistics
    assert model.net.encoder.layer2[0].bn1.training


def test_freeze_encoder_rejects_bad_values():
    with pytest.raises(SegkitError, match="freeze_encoder=6 but this encoder has 5 stages"):
        build_model({**UNET, "freeze_encoder": 6}, num_classes=3)
    with pytest.raises(SegkitError, match="freeze_encoder='all' must be True, False or a number"):
        build_model({**UNET, "freeze_encoder": "all"}, num_classes=3)
    with pytest.raises(SegkitError, match="freeze_bn='yes' must be True or False"):
        build_model({**UNET, "freeze_bn": "yes"}, num_classes=3)


@pytest.mark.parametrize("cfg", [UNET, HRNET])
def test_frozen_batchnorm_keeps_statistics_through_a_train_step(cfg):
    model = build_model({**cfg, "freeze_bn": True}, num_classes=3)
    model.train()
    encoder_norms = [m for m in model.net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    decoder_norms = [m for n, m in model.named_modules()
                     if isinstance(m, torch.nn.BatchNorm2d) and ".encoder." not in f".{n}."]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.weight.clone()) for m in encoder_norms]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    out = model(torch.randn(2, 3, 64, 64) * 3 + 1)
    logits = out["out"] if isinstance(out, dict) else out
    F.cross_entropy(logits, torch.randint(0, 3, (2, 64, 64))).backward()
    optimizer.step()
    assert model.training and not any(m.training for m in encoder_norms)
    assert all(m.training for m in decoder_norms)
    for m, (mean, var, weight) in zip(encoder_norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert torch.equal(m.weight, weight) and not m.weight.requires_grad
    assert any(not torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in decoder_norms)


def test_pretrained_whole_model_and_segkit_checkpoint(tmp_path, caplog):
    source = build_model(UNET, num_classes=3)
    torch.save(source.state_dict(), tmp_path / "model.pth")
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "last.pth")
    for name in ["model.pth", "last.pth"]:
        with caplog.at_level(logging.INFO, logger="segkit"):
            model = build_model({**UNET, "pretrained": str(tmp_path / name)}, num_classes=3)
        loaded, saved = model.state_dict(), source.state_dict()
        assert all(torch.equal(loaded[key], saved[key]) for key in saved)
        n = len(saved)
        report = f"loaded {n}/{n} model tensors; missing 0; unexpected 0; shape-mismatched 0"
        assert report in caplog.text


def test_pretrained_from_another_class_count_reports_mismatched_head(tmp_path, caplog):
    torch.save(build_model(UNET, num_classes=5).state_dict(), tmp_path / "five.pth")
    with caplog.at_level(logging.INFO, logger="segkit"):
        build_model({**UNET, "pretrained": str(tmp_path / "five.pth")}, num_classes=3)
    assert "missing 2 (net.segmentation_head.0.weight, net.segmentation_head.0.bias)" in caplog.text
    assert "shape-mismatched 2 (net.segmentation_head.0.weight" in caplog.text


def test_pretrained_encoder_only_smp_and_timm_hrnet(tmp_path, caplog):
    import timm

    encoder = build_model(UNET, num_classes=3).net.encoder.state_dict()
    encoder["fc.weight"] = torch.zeros(10, 512)  # an ImageNet classifier the encoder does not have
    save_file(encoder, tmp_path / "resnet18.safetensors")
    with caplog.at_level(logging.INFO, logger="segkit"):
        model = build_model({**UNET, "pretrained": str(tmp_path / "resnet18.safetensors")}, num_classes=3)
    assert torch.equal(model.net.encoder.conv1.weight, encoder["conv1.weight"])
    n = len(encoder) - 1
    assert f"loaded {n}/{n} encoder (net.encoder) tensors; missing 0; unexpected 1 (fc.weight)" in caplog.text

    classifier = timm.create_model("hrnet_w18_small", pretrained=False)  # the ImageNet model, head included
    torch.save(classifier.state_dict(), tmp_path / "hrnet_w18.pth")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="segkit"):
        model = build_model({**HRNET, "pretrained": str(tmp_path / "hrnet_w18.pth")}, num_classes=3)
    assert torch.equal(model.net.encoder.stage4[0].branches[3][0].conv1.weight,
                       classifier.stage4[0].branches[3][0].conv1.weight)
    assert "encoder (net.encoder) tensors; missing 0; unexpected" in caplog.text
    assert "(incre_modules." in caplog.text


def test_pretrained_errors_name_the_file(tmp_path):
    with pytest.raises(SegkitError, match="model.pretrained='.*nope.pth' does not exist"):
        build_model({**UNET, "pretrained": str(tmp_path / "nope.pth")}, num_classes=3)
    torch.save({"head.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(SegkitError, match="other.pth'.*none of its 1 tensors fits this model"):
        build_model({**UNET, "pretrained": str(tmp_path / "other.pth")}, num_classes=3)
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SegkitError, match="broken.pth' cannot be read"):
        build_model({**UNET, "pretrained": str(tmp_path / "broken.pth")}, num_classes=3)


TODAYS_ENCODERS = [  # (segkit model, the timm model whose ImageNet checkpoint a user would have on disk)
    ({"type": "UPerNet", "encoder_name": "tu-convnext_atto", "decoder_channels": 16}, "convnext_atto"),
    ({"type": "Unet", "encoder_name": "tu-tf_efficientnetv2_b0", "decoder_channels": (16, 8, 8, 8, 8)},
     "tf_efficientnetv2_b0"),
    ({"type": "FPN", "encoder_name": "tu-regnetx_002", "decoder_segmentation_channels": 32}, "regnetx_002"),
    ({"type": "DPT", "encoder_name": "tu-vit_tiny_patch16_224", "decoder_intermediate_channels": (8, 8, 8, 8),
      "decoder_fusion_channels": 8}, "vit_tiny_patch16_224"),
    ({"type": "Segformer", "encoder_name": "mit_b0", "decoder_segmentation_channels": 16}, None),
]


@pytest.mark.parametrize("cfg, timm_name", TODAYS_ENCODERS, ids=lambda v: v["type"] if isinstance(v, dict) else "")
def test_todays_encoders_split_freeze_take_an_encoder_lr_and_local_weights(tmp_path, caplog, cfg, timm_name):
    import timm

    from segkit.engine.optim import build_optimizer

    cfg = {**cfg, "encoder_weights": None}
    model = build_model({**cfg, "freeze_encoder": 1}, num_classes=3)
    encoder, decoder = ids(encoder_parameters(model)), ids(decoder_parameters(model))
    assert encoder and decoder and not encoder & decoder and encoder | decoder == ids(model.parameters())
    stages = encoder_stages(model)
    assert len(stages) >= 4 and sum(len(s) for s in stages) == len(encoder)
    assert set().union(*(ids(s) for s in stages)) == encoder
    assert not any(p.requires_grad for p in stages[0]) and all(p.requires_grad for p in stages[1])
    groups = build_optimizer({"type": "AdamW", "lr": 1e-3, "encoder_lr_mult": 0.1}, model).param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3])

    if timm_name is None:  # smp's own encoder: its encoder state dict is the local file
        weights = build_model(cfg, num_classes=3).net.encoder.state_dict()
    else:  # what timm.create_model(name, pretrained=True).state_dict() saves, classifier included
        weights = timm.create_model(timm_name, pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, tmp_path / "encoder.safetensors")
    with caplog.at_level(logging.INFO, logger="segkit"):
        loaded = build_model({**cfg, "pretrained": str(tmp_path / "encoder.safetensors")}, num_classes=3)
    n = len(list(loaded.net.encoder.state_dict()))
    assert f"loaded {n}/{n} encoder" in caplog.text, caplog.text
    saved = {key.replace("_", "."): value for key, value in weights.items()}  # features_only flattens paths
    for key, value in loaded.net.encoder.state_dict().items():
        plain = key.removeprefix("model.") if timm_name else key
        assert torch.equal(value, saved[plain.replace("_", ".")]), key
