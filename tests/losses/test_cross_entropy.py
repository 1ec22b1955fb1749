import torch
import torch.nn.functional as F

from segkit.losses.cross_entropy import CrossEntropy


def test_equals_torch_mean_over_valid_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    target[0, :2] = 255
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(CrossEntropy()(logits, target), expected)


def test_class_weights_match_torch_weighted_mean():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[1, 0] = 255
    weights = [0.2, 1.0, 3.0]
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=255)
    assert torch.allclose(CrossEntropy(class_weights=weights)(logits, target), expected)


def test_all_ignored_is_zero_and_half_precision_stays_finite():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = CrossEntropy()(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    saturated = (torch.tensor([[1e4, -1e4, 0.0]]).view(1, 3, 1, 1)).to(torch.bfloat16).requires_grad_()
    loss = CrossEntropy()(saturated, torch.tensor([[[1]]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(saturated.grad).all()
