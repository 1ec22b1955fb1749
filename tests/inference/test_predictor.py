"""Predictor: ensembles, streaming, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segkit.inference.predictor import Predictor
from segkit.inference.tta import TTASpec


def member_probs(member, images: torch.Tensor) -> torch.Tensor:
    """Flip TTA of one member, computed directly."""
    x = images.float()
    with torch.no_grad():
        return (torch.softmax(member.model(x), 1) + torch.softmax(member.model(x.flip(-1)).flip(-1), 1)) / 2


def test_ensemble_is_the_weighted_mean_of_each_models_merged_probabilities(images, toy_member):
    members = [toy_member(multiple=4, seed=0, weight=1.0), toy_member(multiple=8, seed=5, weight=3.0)]
    out = Predictor(members, tta=TTASpec("flip"), batch_size=3).predict_batch(images)
    expected = (member_probs(members[0], images) + 3 * member_probs(members[1], images)) / 4
    torch.testing.assert_close(out.probs, expected, atol=1e-5, rtol=0)
    assert torch.equal(out.labels, out.probs.max(dim=1).indices)


def test_stream_keeps_order_batches_same_size_neighbours_and_reads_lazily(toy_member):
    member = toy_member()
    forwards = []
    member.model.register_forward_hook(lambda mod, inp, out: forwards.append(tuple(inp[0].shape)))
    predictor = Predictor([member], tta=TTASpec("flip"), batch_size=4)  # 2 views -> 2 images per batch
    assert predictor.images_per_batch == 2
    gen = torch.Generator().manual_seed(0)
    sizes = [(20, 30), (20, 30), (20, 30), (17, 9), (20, 30)]
    images = [torch.randint(0, 256, (3, *s), dtype=torch.uint8, generator=gen) for s in sizes]
    pulled = []

    def source():
        for k, image in enumerate(images):
            pulled.append(k)
            yield k, image

    stream = predictor.stream(source())
    first_key, first = next(stream)
    assert first_key == 0 and len(pulled) == 2  # the first batch only, not the whole input
    results = [(first_key, first), *stream]
    assert [k for k, _ in results] == [0, 1, 2, 3, 4]
    assert [tuple(pred.probs.shape[-2:]) for _, pred in results] == sizes
    assert [shape[0] for shape in forwards] == [4, 2, 2, 2]  # (0, 1) together, then 2, 3, 4 alone
    for k, pred in results:
        alone = predictor.predict(images[k])
        torch.testing.assert_close(pred.probs, alone.probs, atol=1e-6, rtol=0)


def test_predict_takes_a_decoded_numpy_image(toy_member):
    image = np.random.default_rng(0).integers(0, 256, (11, 13, 3), dtype=np.uint8)
    predictor = Predictor([toy_member()])
    pred = predictor.predict(image)
    assert pred.probs.shape == (4, 11, 13) and pred.labels.shape == (11, 13)
    torch.testing.assert_close(pred.probs, predictor.predict(torch.from_numpy(image).permute(2, 0, 1)).probs)


def test_bad_arguments(toy_member):
    with pytest.raises(ValueError, match="uint8"):
        Predictor([toy_member()]).predict_batch(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="weights must be positive"):
        Predictor([toy_member(weight=0.0)])
    with pytest.raises(ValueError, match="at least one model"):
        Predictor([])


def test_amp_on_cpu_returns_float32_probabilities(images, toy_member):
    out = Predictor([toy_member()], tta=TTASpec("flip"), amp=True).predict_batch(images)
    assert out.probs.dtype == torch.float32
    torch.testing.assert_close(out.probs.sum(1), torch.ones(2, 37, 23))


@pytest.mark.cuda
def test_tta_ensemble_on_cuda_matches_the_cpu(images, toy_member):
    def predictor(device: str, amp: bool = False) -> Predictor:
        members = [toy_member(multiple=4, seed=0), toy_member(multiple=8, seed=5, weight=2.0)]
        return Predictor(members, tta=TTASpec("d4", (0.75, 1.0)), device=device, amp=amp, batch_size=8)

    cpu = predictor("cpu").predict_batch(images)
    gpu = predictor("cuda").predict_batch(images.cuda())
    assert gpu.probs.device.type == "cuda"
    torch.testing.assert_close(gpu.probs.cpu(), cpu.probs, atol=1e-4, rtol=0)
    half = predictor("cuda", amp=True).predict_batch(images)  # uint8 on the CPU is moved by the predictor
    assert half.probs.dtype == torch.float32
    torch.testing.assert_close(half.probs.cpu(), cpu.probs, atol=5e-2, rtol=0)


def test_resize_predicts_at_the_given_size_and_resizes_probabilities_back(images, toy_member):
    member = toy_member(multiple=8)
    pred = Predictor([member], tta=TTASpec("flip"), resize=(20, 30)).predict_batch(images)
    x = F.interpolate(images.float(), size=(20, 30), mode="bilinear", align_corners=False)
    with torch.no_grad():
        probs = (torch.softmax(member.model(x), 1) + torch.softmax(member.model(x.flip(-1)), 1).flip(-1)) / 2
    expected = F.interpolate(probs, size=images.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(pred.probs, expected, atol=1e-5, rtol=0)
    assert torch.equal(pred.labels, expected.argmax(1))
    same = Predictor([member], resize=tuple(images.shape[-2:])).predict_batch(images)  # already that size
    torch.testing.assert_close(same.probs, Predictor([member]).predict_batch(images).probs)
