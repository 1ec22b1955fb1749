"""Every registered architecture exports to ONNX and passes the onnxruntime check (tiny encoders, from scratch).

New types are picked up from ``segkit.registry.MODELS`` automatically, built small by the model tests' table
(``tests/models/tiny_models.py``). ``SMPPretrained`` builds one of the smp types above from a folder.
"""

from __future__ import annotations

import pytest
import torch

import segkit.models  # noqa: F401  (registers the architectures)
from segkit.deploy.onnx_export import NOT_EXPORTABLE, check_export, export_model
from segkit.errors import SegkitError
from segkit.models.builder import build_model
from segkit.registry import MODELS
from tests.models.tiny_models import NEEDS_FOLDER, tiny_cfg

pytest.importorskip("onnxruntime")

SIZES = ((64, 64), (97, 131), (160, 96))


@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in NEEDS_FOLDER])
def test_every_registered_model_exports_and_matches(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(name), num_classes=3).eval()
    if type(model.net).__name__ in NOT_EXPORTABLE:  # refused in one line that names the layer and why
        with pytest.raises(SegkitError, match=f"{type(model.net).__name__} cannot be exported to ONNX .*: .+"):
            export_model(model, tmp_path / f"{name}.onnx", {"classes": "[]"})
        assert not (tmp_path / f"{name}.onnx").exists()
        return
    path = export_model(model, tmp_path / f"{name}.onnx", {"classes": "[]"})
    results = check_export(model, path, sizes=SIZES, batch=1)
    assert [r["size"] for r in results] == ["64x64", "97x131", "160x96"]
    assert all(r["max_prob_diff"] <= 1e-4 for r in results)
