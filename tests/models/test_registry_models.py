"""Every registered model type does everything segkit asks of a model, from scratch and small.

Built once per type (a module fixture) on a 45x70 input: logits at the input size; one training step under
bf16 autocast on the CPU in which every parameter gets a gradient (DDP without find_unused_parameters);
eval; flip TTA through the Predictor; checkpoint save and load into a fresh build. A type added to
``MODELS`` is picked up here and fails if any of it does not work.
"""

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from segkit.engine.checkpoint import load_checkpoint, save_checkpoint
from segkit.errors import SegkitError
from segkit.inference.predictor import Member, Predictor
from segkit.inference.tta import TTASpec
from segkit.models.builder import build_model
from segkit.registry import MODELS
from tests.models.tiny_models import NEEDS_FOLDER, tiny_cfg

CLASSES = 3
SIZE = (45, 70)


@pytest.fixture(scope="module")
def smp_folder(tmp_path_factory):
    """A plain smp model saved the way smp users share them."""
    folder = tmp_path_factory.mktemp("smp") / "linknet"
    smp.Linknet(encoder_name="resnet18", encoder_weights=None, classes=CLASSES).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=MODELS.names())
def built(request, smp_folder):
    name = request.param
    cfg = {"type": name, "path": str(smp_folder)} if name in NEEDS_FOLDER else tiny_cfg(name)
    torch.manual_seed(0)
    return name, cfg, build_model(cfg, num_classes=CLASSES)


def test_logits_at_the_input_size(built):
    _, _, model = built
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, *SIZE)).shape == (1, CLASSES, *SIZE)


def test_a_bf16_training_step_reaches_every_parameter(built):
    name, _, model = built
    model.train()
    masks = torch.randint(0, CLASSES, (2, *SIZE))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, *SIZE))
    logits = out["out"] if isinstance(out, dict) else out
    loss = F.cross_entropy(logits.float(), masks)
    if isinstance(out, dict):
        loss = loss + model.aux_weight * F.cross_entropy(out["aux"].float(), masks)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and logits.shape == (2, CLASSES, *SIZE)
    # DDP needs every parameter in the graph (timm zero-inits some residual BNs, so grads may be 0)
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert isinstance(out, dict) == hasattr(model, "aux_weight") == (name == "HRNetOCR")


def test_a_batch_of_one_trains_or_says_why(built):
    """BatchNorm after global pooling cannot train on one image: one line, not torch's ValueError."""
    _, _, model = built
    try:
        model.train()(torch.randn(1, 3, *SIZE))
    except SegkitError as err:
        assert "cannot train on a batch of 1" in str(err) and "data.batch_size >= 2" in str(err)


def test_flip_tta_through_the_predictor(built):
    _, _, model = built
    predictor = Predictor([Member(model.eval())], tta=TTASpec("flip"), device="cpu")
    images = torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8)
    prediction = predictor.predict_batch(images)
    assert prediction.probs.shape == (2, CLASSES, *SIZE) and prediction.labels.shape == (2, *SIZE)
    assert torch.allclose(prediction.probs.sum(dim=1), torch.ones(2, *SIZE), atol=1e-4)


def test_checkpoint_save_and_load_into_a_fresh_build(built, tmp_path):
    _, cfg, model = built
    save_checkpoint({"model": model.state_dict()}, tmp_path / "last.pth")
    fresh = build_model(cfg, num_classes=CLASSES)
    fresh.load_state_dict(load_checkpoint(tmp_path / "last.pth")["model"])
    image = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(image), model.eval()(image))
