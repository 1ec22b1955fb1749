"""Draw docs/images/overlap_policies.png: one annotated scene rasterised under each data.overlap policy.

Run from the repository root: ``python docs/images/overlap_policies.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Polygon  # noqa: E402

from segkit.data.masks import OVERLAP_POLICIES, rasterize  # noqa: E402

H, W = 150, 220
CLASSES = {1: ("Metal (cap)", "#3c5fcd"), 2: ("Glass (bottle)", "#2daf5f"), 3: ("Plastic bag", "#a541c3")}


def ellipse(cx: float, cy: float, rx: float, ry: float, points: int) -> list[float]:
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return [round(float(v), 1) for xy in zip(cx + rx * np.cos(t), cy + ry * np.sin(t)) for v in xy]


# json order: bottle, cap, bag. First-polygon lengths: bag 8 < cap 24 < bottle 40 numbers.
ANNS = [
    {"id": 1, "category_id": 2, "segmentation": [ellipse(140, 80, 62, 20, 20)]},  # bottle across the bag's edge
    {"id": 2, "category_id": 1, "segmentation": [ellipse(182, 80, 16, 16, 12)]},  # cap on the bottle, off the bag
    {"id": 3, "category_id": 3, "segmentation": [[15, 20, 120, 12, 128, 138, 22, 130]]},  # the big bag
]
CAPTIONS = {
    "area_desc": "area_desc (default)\nlargest first, smallest on top",
    "max_class": "max_class (2021 baseline)\nhighest class index wins",
    "poly_len_asc": "poly_len_asc (2022 baseline)\nlonger first polygon on top",
    "annotation_order": "annotation_order\nlater in the json on top",
}


def main() -> None:
    out = Path(__file__).with_suffix(".png")
    colors = np.array([[1.0, 1.0, 1.0]] + [matplotlib.colors.to_rgb(CLASSES[k][1]) for k in sorted(CLASSES)])
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.0), dpi=100)
    axes[0].imshow(np.full((H, W, 3), 0.93))
    for ann in ANNS:
        xy = np.reshape(ann["segmentation"][0], (-1, 2))
        color = CLASSES[ann["category_id"]][1]
        axes[0].add_patch(Polygon(xy, closed=True, fill=False, edgecolor=color, linewidth=2))
        axes[0].text(*xy.mean(axis=0), f"#{ann['id']}", color=color, ha="center", va="center", fontsize=11,
                     fontweight="bold")
    axes[0].set_title("the annotations\n(#json order)", fontsize=11)
    for ax, policy in zip(axes[1:], OVERLAP_POLICIES):
        mask = rasterize(ANNS, H, W, {k: k for k in CLASSES}, overlap=policy)
        ax.imshow(colors[mask], interpolation="nearest")
        ax.set_title(CAPTIONS[policy], fontsize=11)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=color, label=f"{k}: {name}") for k, (name, color) in CLASSES.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
