"""``tools/infer_tta.py`` end to end: an ensemble of two tiny demo runs predicts the unlabelled test split."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import segkit.cli.infer_tta as infer_cli
import segkit.cli.test as test_cli
from segkit.cli.train import main as train_main
from segkit.data.coco import CocoSegDataset
from segkit.evaluation.metrics import confusion_matrix, metrics_from_confusion

REPO = Path(__file__).resolve().parents[2]

# Two different networks (encoder depth 3 = stride 8, depth 4 = stride 16), one epoch each.
CONFIGS = {
    "a": "model = dict(encoder_depth=3, decoder_channels=(16, 8, 8))\ntrain = dict(epochs=1, seed=1)",
    "b": "model = dict(encoder_depth=4, decoder_channels=(16, 8, 8, 8))\ntrain = dict(epochs=1, seed=2)",
}
BASE = """
_base_ = ["{repo}/configs/demo_unet.py"]
data = dict(root="{root}", num_workers=0, batch_size=4, val_batch_size=2, train=dict(pipeline=[]))
scheduler = dict(warmup_iters=1)
"""


@pytest.fixture(scope="module")
def runs(tiny_demo, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("infer_runs")
    out = {}
    for name, extra in CONFIGS.items():
        config = folder / f"tiny_{name}.py"
        config.write_text(BASE.format(repo=REPO, root=tiny_demo) + extra + "\n")
        work_dir = folder / name
        assert train_main([str(config), "--work-dir", str(work_dir), "--no-progress", "--device", "cpu"]) == 0
        out[name], out[f"{name}_config"] = work_dir / "checkpoints", config
    return out


def independent_validator(path: Path, names: list[str], size: int, num_classes: int) -> list[np.ndarray]:
    """The competition's rules, checked without segkit: returns the masks."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "image_id,PredictionString" and lines[-1] == ""
    rows = lines[1:-1]
    assert [row.split(",")[0] for row in rows] == names  # one row per image, input order
    masks = []
    for row in rows:
        values = [int(v) for v in row.split(",", 1)[1].split(" ")]
        assert len(values) == size * size
        assert 0 <= min(values) and max(values) < num_classes
        masks.append(np.array(values).reshape(size, size))
    return masks


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkit: error: "), err
    return err[0]


def test_two_checkpoint_ensemble_writes_a_valid_submission_and_every_output(runs, tiny_demo, tmp_path, capsys):
    out_dir, csv, coco_json = tmp_path / "pred", tmp_path / "submission.csv", tmp_path / "results.json"
    argv = [str(runs["a"] / "best.pth"), str(runs["b"] / "last.pth"), "--input", str(tiny_demo / "test.json"),
            "--out-dir", str(out_dir), "--tta", "flip", "--weights", "1,2", "--submission", str(csv),
            "--save-png", "--save-color", "--save-probs", "--coco-results", str(coco_json), "--no-progress",
            "--device", "cpu"]
    assert infer_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "predicted 2 image(s) (TTA flip (prob), 2 checkpoints)" in printed

    test_json = json.loads((tiny_demo / "test.json").read_text())
    assert "annotations" not in test_json
    names = [img["file_name"] for img in test_json["images"]]
    classes = ["Background", *(c["name"] for c in test_json["categories"])]
    masks = independent_validator(csv, names, 256, len(classes))
    assert not list(tmp_path.glob(".*.tmp"))

    record = json.loads((out_dir / "inference.json").read_text())
    assert record["images"] == 2 and record["weights"] == [1.0, 2.0] and record["classes"] == classes
    coco = COCO(str(tiny_demo / "test.json"))
    results = coco.loadRes(str(coco_json))  # pycocotools reads the RLE results back
    for name, image, mask in zip(names, test_json["images"], masks):
        index_png = cv2.imread(str(out_dir / "masks" / Path(name).with_suffix(".png")), cv2.IMREAD_UNCHANGED)
        assert index_png.shape == (64, 64) and index_png.dtype == np.uint8
        np.testing.assert_array_equal(cv2.resize(index_png, (256, 256), interpolation=cv2.INTER_NEAREST), mask)
        saved = np.load(out_dir / "probs" / Path(name).with_suffix(".npz"))
        assert saved["probs"].dtype == np.float16 and saved["probs"].shape == (len(classes), 64, 64)
        assert list(saved["classes"]) == classes
        agree = (saved["probs"].astype(np.float32).argmax(0) == index_png).mean()
        assert agree > 0.99  # float16 rounding may flip near-ties only
        color = cv2.imread(str(out_dir / "color" / Path(name).with_suffix(".png")))
        assert color.shape[0] >= 64 and color.shape[1] > 64  # mask + legend
        painted = np.zeros((64, 64), np.int64)
        for ann in results.loadAnns(results.getAnnIds(imgIds=[image["id"]])):
            region = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert not painted[region].any()  # one RLE per class: no overlaps
            painted[region] = classes.index(coco.cats[ann["category_id"]]["name"])
            assert 0 < ann["score"] <= 1
        np.testing.assert_array_equal(painted, index_png)


def test_config_may_be_omitted_and_wins_when_given(runs, tiny_demo, tmp_path):
    common = ["--input", str(tiny_demo / "test.json"), "--save-png", "--no-progress", "--device", "cpu"]
    ckpt = str(runs["a"] / "best.pth")
    assert infer_cli.main([ckpt, "--out-dir", str(tmp_path / "stored"), *common]) == 0
    assert infer_cli.main([str(runs["a_config"]), ckpt, "--out-dir", str(tmp_path / "given"), *common]) == 0
    stored = sorted((tmp_path / "stored" / "masks").rglob("*.png"))
    given = sorted((tmp_path / "given" / "masks").rglob("*.png"))
    assert len(stored) == len(given) == 2
    for a, b in zip(stored, given):
        np.testing.assert_array_equal(cv2.imread(str(a)), cv2.imread(str(b)))
    slide = ["--set", "test.mode=slide", "test.crop=32", "test.stride=16"]
    assert infer_cli.main([str(runs["a_config"]), ckpt, "--out-dir", str(tmp_path / "slide"), *common, *slide]) == 0
    assert json.loads((tmp_path / "slide" / "inference.json").read_text())["slide"] == [32, 16]


def test_folder_input_names_rows_by_relative_path_and_skips_bad_files_by_flag(runs, tiny_demo, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for k, src in enumerate(sorted((tiny_demo / "images" / "test").iterdir())):
        (folder / ("sub" if k else "") / f"img{k}.jpg").write_bytes(src.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "icon.ico")  # PIL reads it, OpenCV cannot
    csv = tmp_path / "sub.csv"
    argv = [str(runs["a"] / "best.pth"), "--input", str(folder), "--recursive", "--submission", str(csv),
            "--submission-size", "32", "--no-progress", "--device", "cpu"]

    assert infer_cli.main([*argv, "--out-dir", str(tmp_path / "strict")]) == 2
    assert "notes.txt" in one_error_line(capsys) and not csv.exists() and not (tmp_path / "strict").exists()

    assert infer_cli.main([*argv, "--out-dir", str(tmp_path / "lenient"), "--on-bad-image", "skip"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 input(s)" in err
    skipped = json.loads((tmp_path / "lenient" / "skipped.json").read_text())
    assert sorted(entry["name"] for entry in skipped) == ["icon.ico", "notes.txt"]
    independent_validator(csv, ["img0.jpg", "sub/img1.jpg"], 32, 7)


def test_inputs_with_colliding_output_names_are_refused_before_predicting(runs, tiny_demo, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    source = sorted((tiny_demo / "images" / "test").iterdir())[0]
    (folder / "img.jpg").write_bytes(source.read_bytes())
    cv2.imwrite(str(folder / "img.png"), cv2.imread(str(source)))
    argv = [str(runs["a"] / "best.pth"), "--input", str(folder), "--out-dir", str(tmp_path / "out"), "--save-png",
            "--no-progress", "--device", "cpu"]
    assert infer_cli.main(argv) == 2
    line = one_error_line(capsys)
    assert "img.jpg and" in line and "img.png would both be written as img.png" in line
    assert not (tmp_path / "out" / "masks").exists()


def test_an_interrupted_run_leaves_no_csv(runs, tiny_demo, tmp_path, monkeypatch, capsys):
    from segkit.inference.submission import SubmissionWriter

    def stop(self, name, labels):
        raise KeyboardInterrupt

    monkeypatch.setattr(SubmissionWriter, "add", stop)
    csv = tmp_path / "submission.csv"
    code = infer_cli.main([str(runs["a"] / "best.pth"), "--input", str(tiny_demo / "test.json"), "--out-dir",
                           str(tmp_path / "out"), "--submission", str(csv), "--no-progress", "--device", "cpu"])
    assert code == 130 and not csv.exists() and not list(tmp_path.glob(".submission.csv*"))
    assert not (tmp_path / "out" / "inference.json").exists()


@pytest.mark.parametrize(("extra", "needle"), [
    (["--scales", "0.75,,1"], "--scales"),
    (["--scales", "big"], "--scales"),
    (["--slide", "256"], "--slide"),
    (["--slide", "64,128"], "--slide"),
    (["--tta", "rot"], "--tta"),
    (["--weights", "1,2"], "--weights"),
])
def test_malformed_options_are_one_line_errors_and_write_nothing(runs, tiny_demo, tmp_path, capsys, extra, needle):
    out_dir, csv = tmp_path / "out", tmp_path / "s.csv"
    code = infer_cli.main([str(runs["a"] / "best.pth"), "--input", str(tiny_demo / "test.json"), "--out-dir",
                           str(out_dir), "--submission", str(csv), *extra])
    assert code == 2 and needle in one_error_line(capsys)
    assert not out_dir.exists() and not csv.exists()


def test_bad_inputs_are_one_line_errors_and_write_nothing(runs, tiny_demo, tmp_path, capsys):
    ckpt = str(runs["a"] / "best.pth")
    out_dir, csv = tmp_path / "out", tmp_path / "s.csv"

    def run(*extra: str, ckpts=(ckpt,)) -> str:
        assert infer_cli.main([*ckpts, "--out-dir", str(out_dir), "--submission", str(csv), *extra]) == 2
        assert not out_dir.exists() and not csv.exists()
        return one_error_line(capsys)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no files" in run("--input", str(empty))

    state = torch.load(ckpt, weights_only=True)
    state["classes"] = state["classes"][:3]
    other = tmp_path / "other_classes.pth"
    torch.save(state, other)
    line = run("--input", str(tiny_demo / "test.json"), ckpts=(ckpt, str(other)))
    assert "differ from" in line and "'Glass'" in line and "['Background', 'Paper', 'Metal']" in line

    # A checkpoint for 3 classes against the test json's 7 (and against a config's model.num_classes).
    line = run("--input", str(tiny_demo / "test.json"), ckpts=(str(other),))
    assert "trained on classes ['Background', 'Paper', 'Metal']" in line and "Plastic bag" in line
    line = run("--input", str(tiny_demo / "images" / "test"), "--set", "model.num_classes=7",
               ckpts=(str(runs["a_config"]), str(other)))
    assert "3 classes" in line and "model.num_classes=7" in line

    assert "no such file" in run("--input", str(tmp_path / "missing"))
    assert "nothing to write" in one_error_line_of(infer_cli.main([ckpt, "--input", str(tiny_demo), "--out-dir",
                                                                   str(out_dir)]), capsys)

    out_dir.mkdir()
    (out_dir / "earlier.png").write_bytes(b"earlier run")
    assert infer_cli.main([ckpt, "--input", str(tiny_demo / "test.json"), "--out-dir", str(out_dir),
                           "--save-png"]) == 2
    assert "already holds files" in one_error_line(capsys)
    assert sorted(p.name for p in out_dir.iterdir()) == ["earlier.png"]
    assert (out_dir / "earlier.png").read_bytes() == b"earlier run"


def one_error_line_of(code: int, capsys) -> str:
    assert code == 2
    return one_error_line(capsys)


def numpy_miou(pairs: list[tuple[np.ndarray, np.ndarray]], num_classes: int, ignore: int = 255) -> float:
    """mIoU over (prediction, ground truth) pairs, counted with numpy alone (classes absent from both: no IoU)."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    for pred, gt in pairs:
        keep = gt != ignore
        cm += np.bincount(gt[keep].astype(np.int64) * num_classes + pred[keep], minlength=num_classes ** 2).reshape(
            num_classes, num_classes)
    inter, union = np.diag(cm), cm.sum(0) + cm.sum(1) - np.diag(cm)
    return float(np.mean(inter[union > 0] / union[union > 0]))


@pytest.mark.parametrize("options", [["--tta", "flip", "--resize", "48x40"],
                                     ["--tta", "none", "--scales", "0.75", "--resize", "80x72", "--merge", "logit"]])
def test_test_py_miou_equals_a_numpy_count_over_infer_tta_masks_with_resize(runs, tiny_demo, tmp_path, options):
    """One contract: both predict each image at its own size (or at --resize, probabilities resized back)."""
    options = [*options, "--no-progress", "--device", "cpu"]
    ckpts = [str(runs["a"] / "best.pth"), str(runs["b"] / "best.pth")]
    out = tmp_path / "metrics.json"
    assert test_cli.main([str(runs["a_config"]), *ckpts, *options, "--out", str(out)]) == 0
    tested = json.loads(out.read_text())
    assert tested["resize"] == [int(v) for v in options[options.index("--resize") + 1].split("x")]
    assert infer_cli.main([*ckpts, "--input", str(tiny_demo / "val.json"), "--out-dir", str(tmp_path / "val"),
                           "--save-png", *options]) == 0
    assert json.loads((tmp_path / "val" / "inference.json").read_text())["resize"] == tested["resize"]
    dataset = CocoSegDataset(tiny_demo, "val.json", "images")
    pairs = [(cv2.imread(str(tmp_path / "val" / "masks" / Path(info["file_name"]).with_suffix(".png")),
                         cv2.IMREAD_UNCHANGED), dataset.mask(i)) for i, info in enumerate(dataset.images)]
    assert all(pred.shape == (64, 64) for pred, _ in pairs)
    assert numpy_miou(pairs, len(dataset.classes)) == pytest.approx(tested["mIoU"], abs=1e-12)

    # The same json as a labelled test split gives the same numbers.
    test_out = tmp_path / "test_split.json"
    assert test_cli.main([str(runs["a_config"]), *ckpts, *options, "--split", "test", "--set",
                          "data.test.ann=val.json", "--out", str(test_out)]) == 0
    assert json.loads(test_out.read_text())["confusion_matrix"] == tested["confusion_matrix"]


def test_test_py_refuses_an_unlabelled_test_split_and_an_evaluation_pipeline(runs, capsys):
    ckpt = str(runs["a"] / "best.pth")
    assert test_cli.main([str(runs["a_config"]), ckpt, "--split", "test", "--no-progress"]) == 2
    assert "has no 'annotations'" in one_error_line(capsys)
    pipeline = "data.val.pipeline=[dict(type='Resize', height=32, width=32)]"
    assert test_cli.main([str(runs["a_config"]), ckpt, "--set", pipeline, "--no-progress"]) == 2
    assert "data.val.pipeline must be []" in one_error_line(capsys)
    assert test_cli.main([str(runs["a_config"]), ckpt, "--resize", "32", "--no-progress"]) == 2
    assert "--resize '32'" in one_error_line(capsys)


def test_test_py_and_infer_tta_agree_on_the_same_options(runs, tiny_demo, tmp_path):
    """An evaluated number and a submitted mask come from the same code: mIoU of the PNGs = test.py's mIoU."""
    options = ["--tta", "d4", "--scales", "0.75,1.0", "--merge", "logit", "--no-progress", "--device", "cpu"]
    ckpts = [str(runs["a"] / "best.pth"), str(runs["b"] / "best.pth")]
    out = tmp_path / "metrics.json"
    assert test_cli.main([str(runs["a_config"]), *ckpts, *options, "--out", str(out)]) == 0
    tested = json.loads(out.read_text())
    assert tested["tta"] == "d4" and tested["scales"] == [0.75, 1.0] and tested["merge"] == "logit"

    assert infer_cli.main([*ckpts, "--input", str(tiny_demo / "val.json"), "--out-dir", str(tmp_path / "val"),
                           "--save-png", *options]) == 0
    dataset = CocoSegDataset(tiny_demo, "val.json", "images")
    cm = torch.zeros(len(dataset.classes), len(dataset.classes), dtype=torch.int64)
    for i, info in enumerate(dataset.images):
        png = cv2.imread(str(tmp_path / "val" / "masks" / Path(info["file_name"]).with_suffix(".png")),
                         cv2.IMREAD_UNCHANGED)
        cm += confusion_matrix(torch.from_numpy(png).long(), torch.from_numpy(dataset.mask(i)).long(),
                               len(dataset.classes), 255)
    assert metrics_from_confusion(cm, dataset.classes)["mIoU"] == pytest.approx(tested["mIoU"], abs=1e-12)
