"""Every registered architecture exports to ONNX and passes the onnxruntime check (tiny encoders, from scratch).

New types are picked up from ``segkit.registry.MODELS`` automatically with :data:`DEFAULT_TINY`; add an
entry to :data:`TINY` when a type needs other arguments to be small.
"""

from __future__ import annotations

import pytest
import torch

import segkit.models  # noqa: F401  (registers the architectures)
from segkit.deploy.onnx_export import check_export, export_model
from segkit.models.builder import build_model
from segkit.registry import MODELS

pytest.importorskip("onnxruntime")

DEFAULT_TINY = dict(encoder_name="resnet18", encoder_weights=None)
TINY = {
    "Unet": dict(DEFAULT_TINY, decoder_channels=(16, 8, 8, 8, 8)),
    "EfficientUnet": dict(encoder_name="efficientnet-b0", encoder_weights=None, decoder_channels=(16, 8, 8, 8, 8)),
    "UnetPlusPlus": dict(DEFAULT_TINY, decoder_channels=(16, 8, 8, 8, 8)),
    "FPN": dict(DEFAULT_TINY, decoder_pyramid_channels=32, decoder_segmentation_channels=32),
    "DeepLabV3": dict(DEFAULT_TINY, decoder_channels=16),
    "DeepLabV3Plus": dict(DEFAULT_TINY, decoder_channels=16),
    "HRNetV2": dict(backbone="hrnet_w18_small", encoder_weights=None),
    "HRNetOCR": dict(backbone="hrnet_w18_small", encoder_weights=None, ocr_mid_channels=16, ocr_key_channels=8),
}
SIZES = ((64, 64), (97, 131), (160, 96))


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_exports_and_matches(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(dict(type=name, **TINY.get(name, DEFAULT_TINY)), num_classes=3).eval()
    path = export_model(model, tmp_path / f"{name}.onnx", {"classes": "[]"})
    results = check_export(model, path, sizes=SIZES, batch=1)
    assert [r["size"] for r in results] == ["64x64", "97x131", "160x96"]
    assert all(r["max_prob_diff"] <= 1e-4 for r in results)
