"""Gradient accumulation must equal one batch holding the same pixels, however the ignore pixels fall."""

import copy

import pytest
import torch

from segkit.config import load_config
from segkit.engine.trainer import Trainer


def make_trainer(config_path, work_dir, accumulate: int, loss: str = "CrossEntropy") -> Trainer:
    cfg = load_config(config_path, [f"train.accumulate={accumulate}", f"loss={{'type': '{loss}'}}",
                                    "optimizer={'_delete_': True, 'type': 'SGD', 'lr': 1.0}",
                                    "scheduler.warmup_iters=0"])
    return Trainer(cfg, work_dir, torch.device("cpu"), progress=False)


def crafted_batches() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=generator)
    masks = torch.randint(0, 7, (4, 64, 64), dtype=torch.uint8, generator=generator)
    masks[0, :40] = 255  # micro-batch 1 is mostly ignore, micro-batch 2 has none
    masks[1, :, :10] = 255
    return [{"image": images[:2], "mask": masks[:2]}, {"image": images[2:], "mask": masks[2:]}]


@pytest.mark.parametrize("loss", ["CrossEntropy", "BoundaryFocal"])
def test_two_micro_batches_equal_one_batch(tiny_config, tmp_path, loss):
    config = tiny_config(epochs=1)
    one = make_trainer(config, tmp_path / "one", accumulate=1, loss=loss)
    two = make_trainer(config, tmp_path / "two", accumulate=2, loss=loss)
    two.model.load_state_dict(one.model.state_dict())
    before = copy.deepcopy(one.model.state_dict())
    one.model.eval()  # frozen BatchNorm: batch statistics would differ between the two splits by design
    two.model.eval()
    halves = crafted_batches()
    whole = {key: torch.cat([h[key] for h in halves]) for key in ("image", "mask")}
    one.run_step([whole])
    two.run_step(halves)
    assert one.step_loss == pytest.approx(two.step_loss, rel=1e-6)
    for name, param in one.model.named_parameters():
        delta_one = before[name] - param.detach()  # SGD with lr 1: the update is the gradient
        delta_two = before[name] - two.model.state_dict()[name]
        torch.testing.assert_close(delta_two, delta_one, rtol=1e-4, atol=1e-7, msg=name)


def test_naive_mean_of_micro_batch_means_would_differ(tiny_config, tmp_path):
    """Guards the test above: with these ignore counts, averaging micro-batch means is measurably wrong."""
    trainer = make_trainer(tiny_config(epochs=1), tmp_path / "w", accumulate=1)
    trainer.model.eval()
    loss_fn = trainer.objective.loss_fn
    halves = crafted_batches()
    with torch.no_grad():
        logits = [trainer.model(trainer.batcher.images(h)) for h in halves]
        masks = [trainer.batcher.masks(h) for h in halves]
        naive = sum(loss_fn(lg, m) for lg, m in zip(logits, masks)) / 2
        exact = loss_fn(torch.cat(logits), torch.cat(masks))
    assert abs(naive.item() - exact.item()) > 1e-3
