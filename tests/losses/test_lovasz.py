import numpy as np
import torch

from segkit.losses.lovasz import LovaszSoftmax


def reference_lovasz(probs: np.ndarray, truth: np.ndarray) -> float:
    """Straight from the definition: Lovasz extension of |M| / |G u M| over the sorted errors, with sets."""
    losses = []
    for c in range(probs.shape[0]):
        ground = set(np.flatnonzero(truth == c))
        if not ground:
            continue
        errors = np.abs((truth == c).astype(float) - probs[c])
        order = np.argsort(-errors, kind="stable")
        loss, previous, chosen = 0.0, 0.0, set()
        for pixel in order:
            chosen.add(pixel)
            jaccard = len(chosen) / len(ground | chosen)
            loss += errors[pixel] * (jaccard - previous)
            previous = jaccard
        losses.append(loss)
    return float(np.mean(losses))


def batch(seed: int):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 5, 6, generator=generator) * 2
    target = torch.randint(0, 3, (3, 5, 6), generator=generator)  # class 3 never in the truth
    target[:, 0, :3] = 255
    return logits, target


def flat_valid(logits: torch.Tensor, target: torch.Tensor):
    probs = torch.softmax(logits.double(), 1).permute(1, 0, 2, 3).reshape(logits.shape[1], -1).numpy()
    truth = target.reshape(-1).numpy()
    keep = truth != 255
    return probs[:, keep], truth[keep]


def test_batch_loss_matches_reference_on_valid_pixels():
    logits, target = batch(0)
    expected = reference_lovasz(*flat_valid(logits, target))
    assert np.isclose(LovaszSoftmax()(logits, target).item(), expected, rtol=1e-5)


def test_per_image_is_the_mean_of_single_image_references():
    logits, target = batch(1)
    expected = np.mean([reference_lovasz(*flat_valid(logits[i:i + 1], target[i:i + 1])) for i in range(3)])
    assert np.isclose(LovaszSoftmax(per_image=True)(logits, target).item(), expected, rtol=1e-5)


def test_hard_predictions_give_one_minus_iou_of_present_classes():
    target = torch.tensor([[[0, 0, 1, 1], [0, 2, 2, 255]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [0, 2, 0, 0]]])
    logits = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float() * 1e4
    iou = [2 / 4, 2 / 3, 1 / 2]  # class 0: TP 2, FP 1, FN 1; class 1: TP 2, FP 1; class 2: TP 1, FN 1
    assert np.isclose(LovaszSoftmax()(logits, target).item(), 1 - np.mean(iou), rtol=1e-6)
