"""Submission CSV: fast row encoding, streamed writing, validation before the rename."""

from __future__ import annotations

import numpy as np
import pytest

from segkit.errors import SegkitError
from segkit.inference.submission import HEADER, SubmissionWriter, check_row_names, encode_row, validate_submission


def test_rows_encode_like_a_plain_join():
    values = np.random.default_rng(0).integers(0, 255, (37, 41))
    values[0, :3] = (0, 9, 10)
    assert encode_row(values).decode() == " ".join(str(v) for v in values.reshape(-1))
    assert encode_row(np.array([[7]])) == b"7"


def test_written_rows_are_nearest_resized_row_major_and_renamed_only_when_valid(tmp_path):
    path = tmp_path / "sub" / "submission.csv"
    writer = SubmissionWriter(path, num_classes=12, size=4)
    labels = np.array([[0, 11], [3, 5]], np.uint8)  # 2x2 -> 4x4 by nearest neighbour
    writer.add("a/1.jpg", labels)
    writer.add("b.jpg", np.full((3, 5), 2, np.uint8))
    assert not path.exists()  # nothing at the target until close()
    writer.close(["a/1.jpg", "b.jpg"])
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "a/1.jpg," + " ".join(["0 0 11 11"] * 2 + ["3 3 5 5"] * 2)
    assert lines[2] == "b.jpg," + " ".join(["2"] * 16)
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]


def test_a_writer_that_does_not_match_the_expected_rows_leaves_no_file(tmp_path):
    path = tmp_path / "submission.csv"
    writer = SubmissionWriter(path, num_classes=3, size=2)
    writer.add("x.jpg", np.zeros((2, 2), np.uint8))
    with pytest.raises(SegkitError, match="1 rows for 2 images"):
        writer.close(["x.jpg", "y.jpg"])
    assert list(tmp_path.iterdir()) == []
    writer = SubmissionWriter(path, num_classes=3, size=2)
    writer.add("x.jpg", np.zeros((2, 2), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("text", "message"), [
    ("image,PredictionString\nx,0 0 0 0\n", "header"),
    (f"{HEADER}\ny,0 0 0 0\nx,0 0 0 0\n", "expected 'x'"),
    (f"{HEADER}\nx,0 0 0\ny,0 0 0 0\n", "3 values"),
    (f"{HEADER}\nx,0 0 0 3\ny,0 0 0 0\n", "class 3"),
    (f"{HEADER}\nx,0 0 0 -1\ny,0 0 0 0\n", "other than class indices"),
    (f"{HEADER}\nx,0 0 0 0\n", "1 rows for 2"),
    (f"{HEADER}\nx,0 0 0 0\ny,0 0 0 0\nz,0 0 0 0\n", "one more"),
])
def test_validator_rejects_broken_files(tmp_path, text, message):
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(SegkitError, match=message):
        validate_submission(path, ["x", "y"], size=2, num_classes=3)


def test_names_the_format_cannot_hold_are_refused_up_front():
    check_row_names(["a/b.jpg", "c d.png"])
    with pytest.raises(SegkitError, match="comma"):
        check_row_names(["ok.jpg", "a,b.jpg"])
