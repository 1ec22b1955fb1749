"""The commands shown in README.md and docs/*.md work as written.

Every ``python tools/...`` / ``segkit ...`` line of a ```bash block is parsed by the real command-line parser
(a renamed or misspelt option fails here), and the ones that work on the demo data (they name
``configs/demo_*``, ``data/demo`` or ``work_dirs/demo_*``) are run for real, in a sandbox where ``data/demo``
is a tiny demo set and ``work_dirs/demo_unet`` a run trained on it by the documented train command. There
every ``configs/demo_*.py`` is the repository's file with ``train.epochs=2`` on top (every other config is
the repository's own), so the demo-sized commands run in seconds; the documented epochs are not what they
test. Commands on the real trash data or several GPUs can only be parsed here. Synopses with placeholders
belong in ```text blocks, not in ```bash ones.
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from segkit.cli.main import COMMANDS
from segkit.data.demo import make_demo_dataset

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DEMO_MARKERS = ("configs/demo_", "data/demo", "work_dirs/demo")
ELSEWHERE = ("/path/to/", "/data/", "data/trash", "torchrun", "torch.distributed", "dist_train.sh")
LAUNCHERS = ("python tools/", "segkit ", "torchrun ", "python -m torch.distributed.run ", "tools/dist_train.sh ")
# Writes the full 300-image demo set (tests/data/test_demo.py covers it); running it would replace the sandbox's
# tiny set and make every later command slow.
NOT_RUN = ("tools/make_demo_data.py",)
# The documented demo training: the sandbox runs it once, and the commands that read its run reuse it.
TRAIN = "python tools/train.py configs/demo_unet.py --work-dir work_dirs/demo_unet --overwrite"
# Likewise the documented pseudo-labelling of the demo test split: the student's training reads its json.
PSEUDO = ("python tools/pseudo_label.py configs/demo_unet.py work_dirs/demo_unet/checkpoints/best.pth "
          "--input data/demo/test.json --out data/demo/pseudo.json --tta d4 --threshold 0.7 --overwrite "
          "--report work_dirs/demo_unet/pseudo_report.md")
# And the documented ONNX export (docs/deploy.md): the commands that predict with the .onnx files read them.
EXPORT = ("python tools/export.py work_dirs/demo_unet/checkpoints/best.pth --out work_dirs/demo_unet/model.onnx "
          "--int8 --calib 32")


def documented_commands() -> list[tuple[str, str]]:
    """``(file:line, command)`` for every segkit command line in a ```bash block, continuations joined."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            first_line = text[: block.start()].count("\n") + 2
            lines = block.group(1).split("\n")
            i = 0
            while i < len(lines):
                start, command = i, lines[i]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                i += 1
                command = re.sub(r"\s{2,}#.*$", "", command).strip()
                if command.startswith(LAUNCHERS):
                    found.append((f"{doc.relative_to(REPO)}:{first_line + start}", command))
    return found


def expand_braces(word: str) -> list[str]:
    """``fold{0,1}/x`` -> ``fold0/x fold1/x`` (what bash does before the command sees its arguments)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not match:
        return [word]
    return list(itertools.chain.from_iterable(
        expand_braces(word[: match.start()] + option + word[match.end():]) for option in match.group(1).split(",")))


def split_words(command: str) -> list[str]:
    """The words bash passes to the program: quotes removed, unquoted braces expanded."""
    lexer = shlex.shlex(command, posix=False)
    lexer.whitespace_split = True
    words = []
    for raw in lexer:
        quoted = any(q in raw for q in "'\"")
        words += shlex.split(raw) if quoted else expand_braces(raw)
    return words


def argv_of(command: str) -> tuple[str, list[str]]:
    """The segkit.cli module a command runs and its arguments."""
    words = split_words(command)
    if words[0] == "segkit":
        return COMMANDS[words[1]], words[2:]
    if words[0] == "tools/dist_train.sh":  # CONFIG GPUS [train.py options]
        return "segkit.cli.train", [words[1], *words[3:]]
    at = next(i for i, w in enumerate(words) if w.startswith("tools/") and w.endswith(".py"))  # after a launcher
    tool = (REPO / words[at]).read_text(encoding="utf-8")
    module = re.search(r"from (segkit\.cli\.\w+) import main", tool).group(1)
    return module, words[at + 1:]


COMMANDS_SHOWN = documented_commands()
DEMO_COMMANDS = [(where, c) for where, c in COMMANDS_SHOWN if any(m in c for m in DEMO_MARKERS)
                 and not any(e in c for e in ELSEWHERE) and not any(n in c for n in NOT_RUN)]


def test_the_docs_show_commands():
    assert len(COMMANDS_SHOWN) > 20 and len(DEMO_COMMANDS) >= 5
    assert TRAIN in [c for _, c in DEMO_COMMANDS], "docs/getting_started.md no longer shows the demo training"
    assert PSEUDO.split() in [c.split() for _, c in DEMO_COMMANDS], \
        "docs/pseudo_labels.md no longer shows the demo pseudo-labelling"


@pytest.mark.parametrize(("where", "command"), COMMANDS_SHOWN, ids=[w for w, _ in COMMANDS_SHOWN])
def test_every_documented_command_parses(where, command, capsys):
    placeholder = re.search(r"\[--|\b(CONFIG|CKPT|DIR|FILE|ANN)\b", command)
    assert placeholder is None, f"{where}: a synopsis with placeholders in a ```bash block; use a ```text block"
    module, argv = argv_of(command)
    parser = importlib.import_module(module).build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{where}: `{command}` does not parse: {capsys.readouterr().err.strip()} (exit {stop.code})")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder laid out like the repository after `make demo`'s first steps, with a tiny demo set and run."""
    root = tmp_path_factory.mktemp("docs_sandbox")
    for name in ("tools", "docs"):
        (root / name).symlink_to(REPO / name)
    (root / "configs").mkdir()
    for entry in (REPO / "configs").iterdir():
        (root / "configs" / entry.name).symlink_to(entry)
    for demo in (REPO / "configs").glob("demo_*.py"):
        (root / "configs" / demo.name).unlink()
        (root / "configs" / demo.name).write_text(f"_base_ = [{str(demo)!r}]\ntrain = dict(epochs=2)\n",
                                                  encoding="utf-8")
    make_demo_dataset(root / "data" / "demo", num_train=4, num_val=2, num_test=2, size=64, progress=False)
    for command in (TRAIN, PSEUDO, EXPORT):
        done = run(root, command)
        assert done.returncode == 0, f"`{command}` failed in the sandbox:\n{done.stderr[-2000:]}"
    return root


def run(cwd: Path, command: str) -> subprocess.CompletedProcess:
    words = split_words(command)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *words[1:]] if words[0] == "python" else
                          [sys.executable, "-m", "segkit.cli.main", *words[1:]],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _link_checkpoints(source: str, target: str) -> None:
    """Checkpoints are hard-linked (they are only ever replaced by a rename), everything else copied."""
    if source.endswith(".pth"):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


@pytest.mark.parametrize(("where", "command"), DEMO_COMMANDS, ids=[w for w, _ in DEMO_COMMANDS])
def test_demo_commands_run_as_written(where, command, sandbox, tmp_path):
    if command == TRAIN:  # the sandbox's own run: it succeeded, and left what the docs say it leaves
        for name in ("checkpoints/best.pth", "checkpoints/last.pth", "metrics.jsonl", "summary.json", "config.py"):
            assert (sandbox / "work_dirs" / "demo_unet" / name).is_file(), name
        return
    if command.split() == PSEUDO.split():  # run by the sandbox too (the student reads its json)
        for name in ("data/demo/pseudo.json", "work_dirs/demo_unet/pseudo_report.md",
                     "work_dirs/demo_unet/pseudo_report_confidence.png"):
            assert (sandbox / name).is_file(), name
        return
    if command == EXPORT:
        for name in ("model.onnx", "model.int8.onnx"):
            assert (sandbox / "work_dirs" / "demo_unet" / name).is_file(), name
        return
    work = tmp_path / "repo"
    shutil.copytree(sandbox, work, symlinks=True, copy_function=_link_checkpoints)
    done = run(work, command)
    assert done.returncode == 0, f"{where}: `{command}` failed:\n{done.stderr[-2000:]}"
