"""The documentation: the site builds with warnings as errors, the README stays short, and their examples run.

Code blocks are read from the Markdown. A block that must not run in a test (the set-up commands, `pip install`,
a server that runs until stopped, a download) carries the comment `<!-- not-run: REASON -->` on the line just
before it. Every other ```python block of the README and of the site's pages runs, a page's blocks in order in one
namespace, and every other ```bash block of the README runs in bash. They run in a scratch folder laid out as a
checkout with the data beside it: `docs` (a link to this checkout's) and `../shared/data` (a link to the data
folder), so the examples' relative paths work as written and what they write (`runs/...`) lands in the scratch
folder. The site's shell examples that do not run (training, cross-validation, clusters) are parsed by the
command's own parser instead, so every command and option they name exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecgrhythm.config import default_data_dir

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
BIN = Path(sys.executable).parent  # the environment's `ecgrhythm` and `mkdocs` sit beside its python
DATA = default_data_dir()

README_MAX_LINES = 150
NOT_RUN = re.compile(r"^<!--\s*not-run:(.*?)-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
SHELL = {"bash", "console", "sh", "shell"}
MACHINE_PATHS = re.compile(r"(?<![\w.])/(work|tmp|root|home)/")
# Reports that `ecgrhythm crossval` writes record the command it ran, paths included: data, not prose.
GENERATED = re.compile(r"^results/crossval/[^/]+/report\.md$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason of its not-run mark, or None if it runs

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the not-run mark on the line before it, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{path.relative_to(REPO)}:{i + 1}: a code block is never closed"
        mark = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        blocks.append(Block(path, i + 1, opening.group(1).lower(), "\n".join(lines[i + 1 : end]) + "\n", mark and mark.group(1).strip()))
        i = end + 1
    return blocks


def site_pages() -> list[Path]:
    """The site's hand-written Markdown pages (the reports the commands write are data)."""
    return sorted(p for p in DOCS.rglob("*.md") if not GENERATED.match(p.relative_to(DOCS).as_posix()))


def all_blocks() -> list[Block]:
    return [b for page in [README, *site_pages()] for b in code_blocks(page)]


def command_lines(block: Block) -> list[list[str]]:
    """The shell commands of a block as argument lists: comments dropped, leading `VAR=value` settings skipped."""
    commands = []
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def data_folders(text: str) -> list[str]:
    """The data folders (`../shared/data/NAME`) a piece of text uses."""
    return sorted(set(re.findall(r"\.\./shared/data/([\w.-]+)", text)))


def skip_without_data(text: str) -> None:
    for name in data_folders(text):
        if DATA is None or not (DATA / name).is_dir():
            pytest.skip(f"the shared data folder {name!r} is not available (set ECGRHYTHM_DATA)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A scratch folder laid out as a checkout with the data beside it (see the module docstring)."""
    root = tmp_path_factory.mktemp("docs-examples")
    work = root / "checkout"
    work.mkdir()
    (work / "docs").symlink_to(DOCS, target_is_directory=True)
    if DATA is not None:
        (root / "shared").mkdir()
        (root / "shared" / "data").symlink_to(DATA, target_is_directory=True)
    return work


# -- the site ------------------------------------------------------------------------------------------------------


def test_site_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([BIN / "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    card = (site / "model-card" / "index.html").read_text(encoding="utf-8")
    assert "One CNN + two-layer bidirectional LSTM network" in card  # the card itself, included by the hook
    assert 'href="../studies/depth/"' in card  # and its link into docs/, pointed at the site's page
    reference = (site / "reference" / "inference" / "index.html").read_text(encoding="utf-8")
    assert "predict_records" in reference  # read from the docstrings
    assert '<span class="gp">&gt;&gt;&gt; </span>' in reference  # `Example:` sections shown as doctest code


def test_no_machine_paths_in_the_docs():
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in [README, REPO / "mkdocs.yml", *site_pages()]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if MACHINE_PATHS.search(line)
    ]
    assert not found, "paths of one machine:\n" + "\n".join(found)


# -- the README ----------------------------------------------------------------------------------------------------


def test_readme_is_short_and_starts_with_install_and_classify():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, more than {README_MAX_LINES}"
    top = "\n".join(lines[:40])
    assert "pip install" in top, "README.md: no `pip install` in its first 40 lines"
    assert re.search(r"^ecgrhythm classify ", top, re.MULTILINE), "README.md: no `ecgrhythm classify` example in its first 40 lines"
    assert "bash scripts/main.sh" in top and "bash scripts/test.sh" in top


def test_not_run_marks_give_a_reason():
    text_marks = [
        (path, n) for path in [README, *site_pages()] for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "not-run" in line
    ]
    marked = {(b.path, b.line - 1) for b in all_blocks() if b.not_run is not None}
    stray = [f"{p.relative_to(REPO)}:{n}" for p, n in text_marks if (p, n) not in marked]
    assert not stray, "not-run marks that are not `<!-- not-run: REASON -->` just before a code block: " + ", ".join(stray)
    empty = [str(b) for b in all_blocks() if b.not_run == ""]
    assert not empty, "not-run marks without a reason: " + ", ".join(empty)


def test_readme_shell_blocks_run_only_ecgrhythm_or_python_or_are_marked():
    others = [
        f"{b}: {' '.join(words)}"
        for b in code_blocks(README)
        if b.lang in SHELL and b.not_run is None
        for words in command_lines(b)
        if words[0] not in ("ecgrhythm", "python")
    ]
    assert not others, "README shell blocks that would run something else than ecgrhythm or python (mark them not-run): " + "; ".join(others)


def test_every_ecgrhythm_command_in_the_docs_parses(capsys):
    from ecgrhythm.cli import build_parser

    parser = build_parser()
    bad = []
    for block in all_blocks():
        if block.lang not in SHELL:
            continue
        for words in command_lines(block):
            if words[0] != "ecgrhythm":
                continue
            try:  # `@FILE` (a file of arguments) is read by the parser itself: parse its name as a path instead
                parser.parse_args([w.removeprefix("@") for w in words[1:]])
            except SystemExit as exc:
                if exc.code not in (0, None):
                    bad.append(f"{block}: {shlex.join(words)}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert not bad, "commands the CLI refuses:\n" + "\n".join(bad)


README_SHELL = [b for b in code_blocks(README) if b.lang in SHELL and b.not_run is None]


@pytest.mark.parametrize("block", README_SHELL, ids=str)
def test_readme_shell_block_runs(block, workdir):
    skip_without_data(block.code)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KERAS_BACKEND": "jax"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{block} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    for words in command_lines(block):
        outputs = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output", "--summary") and words[i + 1] != "-"]
        for name in outputs:
            assert (workdir / name).stat().st_size > 0, f"{block}: {shlex.join(words)} wrote nothing to {name}"
        if not outputs and words[1] in ("classify", "episodes"):
            assert done.stdout.startswith("record,"), f"{block}: {shlex.join(words)} printed no CSV: {done.stdout[:200]!r}"


# -- the Python examples -------------------------------------------------------------------------------------------

PYTHON_PAGES = sorted({b.path for b in all_blocks() if b.lang == "python" and b.not_run is None}, key=lambda p: (p != README, p))


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_python_examples_run(page, workdir, monkeypatch):
    blocks = [b for b in code_blocks(page) if b.lang == "python" and b.not_run is None]
    skip_without_data("".join(b.code for b in blocks))
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__docs_example__"}
    for block in blocks:
        try:
            exec(compile(block.code, str(block), "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"{block}: {type(exc).__name__}: {exc}")
