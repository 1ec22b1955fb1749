from __future__ import annotations

import cv2
import torch

from segkit.visualization.panel_files import PanelFileWriter


def test_one_png_per_image_mirroring_file_names_and_never_outside_the_folder(tmp_path):
    out = tmp_path / "show"
    writer = PanelFileWriter(out, ["Background", "Paper"])
    logits = torch.randn(3, 2, 16, 24)
    target = torch.randint(0, 2, (3, 16, 24))
    batch = {"image": torch.zeros(3, 3, 16, 24, dtype=torch.uint8), "image_id": torch.arange(3),
             "file_name": ["val/a.jpg", "../../escape.jpg", "/abs/b.png"]}
    writer.observe(batch, logits, logits.argmax(dim=1), target)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["abs/b.png", "escape.png",
                                                                                  "val/a.png"]
    assert writer.written == [out / "val/a.png", out / "escape.png", out / "abs/b.png"]
    picture = cv2.imread(str(out / "val/a.png"))
    assert picture.shape[0] >= 256 + 40  # 16 px enlarged 16x, plus title and column labels
