from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from segkit.evaluation.evaluator import SegEvaluator

C = 5
NAMES = [f"c{i}" for i in range(C)]
SIZES = [(9, 13), (16, 7), (5, 5), (12, 10), (3, 21), (8, 8)]


def _images(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pred, target) pairs of different sizes; ~25% ignored pixels carrying random predictions.

    Class 4 never appears in the target (only predicted) so the only-predicted path is exercised.
    """
    rng = np.random.default_rng(seed)
    pairs = []
    for h, w in SIZES:
        target = rng.integers(0, C - 1, size=(1, h, w))
        target[rng.random(target.shape) < 0.25] = 255
        pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, C, size=target.shape))
        pred[target == 255] = rng.integers(0, C, size=int(np.sum(target == 255)))
        pairs.append((torch.from_numpy(pred), torch.from_numpy(target)))
    return pairs


def _reference_iou(pairs) -> tuple[list[float | None], float]:
    """Per-class TP/FP/FN counted with boolean masks over all pixels of all images concatenated."""
    pred = np.concatenate([p.numpy().ravel() for p, _ in pairs])
    target = np.concatenate([t.numpy().ravel() for _, t in pairs])
    keep = target != 255
    ious = []
    for c in range(C):
        tp = np.sum(keep & (pred == c) & (target == c))
        fp = np.sum(keep & (pred == c) & (target != c))
        fn = np.sum(keep & (pred != c) & (target == c))
        ious.append(tp / (tp + fp + fn) if tp + fp + fn else None)
    return ious, float(np.mean([v for v in ious if v is not None]))


def test_dataset_level_iou_matches_numpy_reference_over_images_of_different_sizes():
    pairs = _images()
    ev = SegEvaluator(C, NAMES)
    for pred, target in pairs:
        ev.process(pred, target)

    m = ev.evaluate()
    ious, miou = _reference_iou(pairs)
    assert m["IoU"]["c4"] == 0.0  # only predicted: a real 0 that counts
    assert m["IoU"] == pytest.approx(dict(zip(NAMES, ious, strict=True)), abs=1e-6)
    assert m["mIoU"] == pytest.approx(miou, abs=1e-6)


def test_ignored_pixels_do_not_count_whatever_is_predicted():
    target = torch.tensor([[[0, 1], [255, 255]]])
    ev = SegEvaluator(3, ["a", "b", "c"])
    ev.process(torch.tensor([[[0, 1], [2, 0]]]), target)
    m = ev.evaluate()
    assert m["IoU"] == {"a": 1.0, "b": 1.0, "c": None}
    assert m["mIoU"] == 1.0 and ev.confusion.sum() == 2


def test_absent_class_is_none_and_only_predicted_class_counts_as_zero():
    ev = SegEvaluator(3, ["a", "b", "c"])
    ev.process(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 0, 0]]))  # "b" only predicted, "c" absent
    m = ev.evaluate()
    assert m["IoU"] == {"a": 0.5, "b": 0.0, "c": None}
    assert m["mIoU"] == 0.25
    assert m["Acc"] == {"a": 0.5, "b": None, "c": None} and m["mAcc"] == 0.5


def test_dataset_level_not_per_batch_average():
    ev = SegEvaluator(2, ["bg", "can"])
    # batch 1: 16 "can" pixels, all right -> batch mIoU 1.0 ("bg" absent)
    ev.process(torch.ones(1, 4, 4, dtype=torch.long), torch.ones(1, 4, 4, dtype=torch.long))
    # batch 2: one "can" pixel missed -> bg IoU 3/4, can IoU 0 -> batch mIoU 0.375
    ev.process(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 0], [0, 1]]]))

    per_batch_mean = (1.0 + 0.375) / 2
    dataset_level = (3 / 4 + 16 / 17) / 2  # bg: TP 3, FP 1; can: TP 16, FN 1
    assert abs(per_batch_mean - dataset_level) > 0.1
    assert ev.evaluate()["mIoU"] == pytest.approx(dataset_level, abs=1e-12)


def test_logits_equal_their_argmax():
    torch.manual_seed(0)
    logits = torch.randn(3, C, 6, 4)
    target = torch.randint(0, C, (3, 6, 4))
    target[0, 0] = 255
    from_logits, from_pred = SegEvaluator(C, NAMES), SegEvaluator(C, NAMES)
    counted = from_logits.process(logits, target)
    assert torch.equal(counted, logits.argmax(dim=1))  # handed back for drawing, no second argmax
    from_pred.process(logits.argmax(dim=1), target)
    assert torch.equal(from_logits.confusion, from_pred.confusion)
    assert from_logits.confusion.sum() == 3 * 6 * 4 - 4


def test_uint8_targets_match_reference():
    pairs = [(p.to(torch.uint8), t.to(torch.uint8)) for p, t in _images(seed=1)]
    ev = SegEvaluator(C, NAMES)
    for pred, target in pairs:
        ev.process(pred, target)
    assert ev.confusion.dtype == torch.int64
    assert ev.evaluate()["mIoU"] == pytest.approx(_reference_iou(pairs)[1], abs=1e-6)


def test_bad_inputs_raise_value_errors():
    ev = SegEvaluator(3, ["a", "b", "c"])
    with pytest.raises(ValueError, match="target value 7"):
        ev.process(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 7], [1, 2]]]))
    with pytest.raises(ValueError, match="resize the logits"):
        ev.process(torch.randn(1, 3, 4, 4), torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"logits must be \(B, 3, H, W\)"):
        ev.process(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="2 class names"):
        SegEvaluator(3, ["a", "b"])
    assert ev.confusion.sum() == 0  # failed batches leave nothing behind


def test_evaluate_keeps_the_matrix_behind_the_numbers():
    ev = SegEvaluator(2, ["a", "b"])
    assert ev.last_confusion is None
    ev.process(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 0, 1]]))
    ev.evaluate()
    assert ev.last_confusion.tolist() == [[1, 1], [0, 1]] and ev.last_confusion.device.type == "cpu"


def test_reset_and_confusion_is_a_copy():
    ev = SegEvaluator(2, ["a", "b"])
    ev.process(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    ev.confusion.zero_()
    assert ev.confusion.tolist() == [[1, 0], [0, 1]]
    ev.reset()
    assert ev.confusion.sum() == 0 and ev.evaluate()["mIoU"] is None


def _ddp_worker(rank: int, world_size: int, store: str, out_dir: str, shards) -> None:
    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world_size, timeout=timedelta(seconds=30)
    )
    try:
        ev = SegEvaluator(C, NAMES, boundary_iou=True)
        for pred, target in shards[rank]:
            ev.process(pred, target)
        result = {"local_total": int(ev.confusion.sum()), "metrics": ev.evaluate()}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_ddp_two_ranks_equal_single_process(tmp_path):
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this build")
    pairs = _images(seed=2)
    shards = [pairs[:4], pairs[4:]]  # uneven halves: the ranks see different pixel counts
    # fork, not spawn: the children inherit the imported torch instead of importing it again (seconds each).
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path), shards), nprocs=2, join=True,
                       start_method="fork")

    single = SegEvaluator(C, NAMES, boundary_iou=True)  # the boundary counts travel in the same all_reduce
    for pred, target in pairs:
        single.process(pred, target)
    expected = json.loads(json.dumps(single.evaluate()))
    assert expected["mBoundaryIoU"] is not None

    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0]["local_total"] + results[1]["local_total"] == int(single.confusion.sum())
    assert 0 < results[0]["local_total"] < int(single.confusion.sum())
    for r in results:
        assert r["metrics"] == expected
    assert expected["mIoU"] == pytest.approx(_reference_iou(pairs)[1], abs=1e-6)
