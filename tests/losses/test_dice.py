import math

import pytest
import torch

from segkit.losses.dice import Dice


def logits_from_probs(*pixels):
    """(1, C, 1, N) logits whose softmax is exactly the given per-pixel probabilities."""
    return torch.tensor(pixels).log().T.reshape(1, -1, 1, len(pixels))


def test_hand_computation_skips_classes_absent_from_truth_and_prediction():
    # pixel 0: truth 1, pixel 1: truth 0, pixel 2: ignored (would predict class 2)
    logits = logits_from_probs([0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8])
    target = torch.tensor([[[1, 0, 255]]])
    class0 = (2 * 0.6 + 1) / (0.8 + 1 + 1)
    class1 = (2 * 0.7 + 1) / (1.0 + 1 + 1)
    assert math.isclose(Dice(smooth=1.0)(logits, target).item(), 1 - (class0 + class1) / 2, rel_tol=1e-5)


def test_a_predicted_class_absent_from_truth_counts_as_a_false_positive():
    logits = logits_from_probs([0.2, 0.7, 0.1], [0.3, 0.1, 0.6])
    target = torch.tensor([[[1, 0]]])
    class0 = (2 * 0.3 + 0.5) / (0.5 + 1 + 0.5)
    class1 = (2 * 0.7 + 0.5) / (0.8 + 1 + 0.5)
    class2 = 0.5 / (0.7 + 0.5)
    expected = 1 - (class0 + class1 + class2) / 3
    assert math.isclose(Dice(smooth=0.5)(logits, target).item(), expected, rel_tol=1e-5)


def test_perfect_prediction_is_zero_without_smoothing():
    target = torch.tensor([[[0, 1], [2, 2]]])
    logits = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 100
    assert Dice(smooth=0.0)(logits, target).item() == pytest.approx(0.0, abs=1e-6)
