from __future__ import annotations

import torch

from segkit.visualization.collector import PanelCollector

NAMES = ["Background", "Paper", "Metal", "Glass"]
C = len(NAMES)


def _image(classes: list[int], wrong: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An 8x8 target with a stripe of each listed class, and logits that get ``wrong`` of the pixels wrong."""
    target = torch.zeros(8, 8, dtype=torch.long)
    for i, c in enumerate(classes):
        target[:, 2 * i : 2 * i + 2] = c
    pred = target.clone()
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(8, 8, generator=gen) < wrong
    pred[flip] = (pred[flip] + 1) % C
    logits = torch.nn.functional.one_hot(pred, C).permute(2, 0, 1).float() * 4
    return logits, target


# image id -> (GT classes, fraction wrong)
IMAGES = {
    10: ([0, 1], 0.0),
    11: ([0, 1], 0.6),  # nothing new to show, but bad
    12: ([2], 0.1),
    13: ([0, 2, 3], 0.0),
    14: ([3], 0.9),  # the worst
    15: ([1, 3], 0.3),
}


def _batches(size: int = 2):
    ids = list(IMAGES)
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        pairs = [_image(*IMAGES[i], seed=i) for i in chunk]
        batch = {
            "image": torch.full((len(chunk), 3, 8, 8), 128, dtype=torch.uint8),
            "image_id": torch.tensor(chunk),
            "file_name": [f"val/{i}.jpg" for i in chunk],
        }
        logits = torch.stack([p[0] for p in pairs])
        yield batch, logits, logits.argmax(dim=1), torch.stack([p[1] for p in pairs])


def _pass(collector: PanelCollector) -> dict:
    for batch, logits, pred, target in _batches():
        collector.observe(batch, logits, pred, target)
    return dict(collector.finish())


def test_fixed_set_covers_every_class_greedily_and_stays_fixed():
    collector = PanelCollector(NAMES, worst_k=2, class_images=2)
    panels = _pass(collector)
    assert collector.fixed == [10, 12, 13]  # 11 adds no class; 13 adds Glass; 14, 15 add nothing
    assert {"val/samples/fixed/val_10.jpg", "val/samples/fixed/val_12.jpg",
            "val/samples/fixed/val_13.jpg"} <= set(panels)
    assert collector.per_class == {0: [10, 11], 1: [10, 11], 2: [12, 13], 3: [13, 14]}
    assert sorted(t for t in panels if t.startswith("val/class/")) == [f"val/class/{n}" for n in sorted(NAMES)]

    collector.fixed.append(99)  # a second pass must not re-choose: image 15 would otherwise never join
    again = _pass(collector)
    assert collector.fixed == [10, 12, 13, 99] and set(again) == set(panels)


def test_worst_k_are_the_lowest_per_image_miou_worst_first():
    collector = PanelCollector(NAMES, worst_k=2, class_images=1)
    for batch, logits, pred, target in _batches():
        collector.observe(batch, logits, pred, target)
    assert collector.worst_ids() == [14, 11]
    panels = dict(collector.finish())
    assert [t for t in panels if t.startswith("val/samples/worst/")] == ["val/samples/worst/1", "val/samples/worst/2"]
    assert collector.worst_ids() == [] and collector._kept == {}  # forgotten after finish


def test_only_the_chosen_images_are_kept_during_a_pass():
    collector = PanelCollector(NAMES, worst_k=1, class_images=1)
    batches = list(_batches(size=6))
    collector.observe(*batches[0])
    wanted = set(collector.fixed) | {i for ids in collector.per_class.values() for i in ids}
    assert set(collector._kept) == wanted | {14}
