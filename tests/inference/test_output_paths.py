"""Output paths checked before anything is loaded, and temp files of killed runs cleaned up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from segkit.errors import SegkitError
from segkit.inference.submission import SubmissionWriter
from segkit.paths import check_output_file, check_output_folder, remove_stale_temps


def test_a_folder_or_a_path_under_a_file_is_refused_as_an_output_file(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SegkitError, match="is a folder"):
        check_output_file(tmp_path, "--submission")
    with pytest.raises(SegkitError, match=r"--submission .*a_file/deeper/s.csv: .*a_file is a file"):
        check_output_file(tmp_path / "a_file" / "deeper" / "s.csv", "--submission")
    with pytest.raises(SegkitError, match=r"--show-dir .*a_file is a file; give a folder"):
        check_output_folder(tmp_path / "a_file", "--show-dir")
    with pytest.raises(SegkitError, match=r"--out-dir .*a_file/x: .*a_file is a file"):
        check_output_folder(tmp_path / "a_file" / "x", "--out-dir")
    assert check_output_file(tmp_path / "new" / "deeper" / "s.csv", "--out") == tmp_path / "new" / "deeper" / "s.csv"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_temp_files_of_killed_runs_are_removed_by_the_next_run_of_the_same_output(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".sub.csv.{dead_pid}.tmp"
    alive = tmp_path / f".sub.csv.{1}.tmp"  # pid 1 is always running
    other = tmp_path / f".other.csv.{dead_pid}.tmp"
    for path in (stale, alive, other):
        path.write_bytes(b"x" * 1000)
    writer = SubmissionWriter(tmp_path / "sub.csv", 3, 2)
    writer.abort()
    assert not stale.exists() and alive.exists() and other.exists()
    assert remove_stale_temps(tmp_path / "other.csv") == [other]


@pytest.mark.parametrize("flag", ["--submission", "--coco-results", "--out-dir"])
def test_infer_tta_refuses_a_bad_output_path_before_loading_anything(tmp_path, capsys, flag):
    import segkit.cli.infer_tta as infer_cli

    (tmp_path / "a_file").write_text("x")
    bad = {"--submission": tmp_path, "--coco-results": tmp_path / "a_file" / "r.json",
           "--out-dir": tmp_path / "a_file" / "out"}[flag]
    argv = ["missing.pth", "--input", str(tmp_path), "--save-png", "--out-dir", str(tmp_path / "out"),
            flag, str(bad)]
    assert infer_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "missing.pth" not in err[0], err  # before the checkpoint is read
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--out", "--show-dir"])
def test_test_py_refuses_a_bad_output_path_before_loading_anything(tmp_path, capsys, flag):
    import segkit.cli.test as test_cli

    (tmp_path / "a_file").write_text("x")
    bad = tmp_path if flag == "--out" else tmp_path / "a_file"
    assert test_cli.main(["missing_config.py", "missing.pth", flag, str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "missing" not in err[0].split(flag)[0], err
