"""README.md is true as written: its shell blocks run, in order, in one shell, as a user would type them.

A shell block is an indented (or ```sh / ```console) block whose commands start with ``$ ``; the lines
after a command are its output, and ``$ echo $?`` after a command gives its expected exit status (0
otherwise). ```python blocks run too. The comment on the line before a block marks it:
``<!-- readme-test: slow -->`` (run by ``make test-slow`` only) or ``<!-- readme-test: skip (why) -->``
(never run: it needs the web, a GPU or an hour). The opening block (``make setup``, ``make test``) is
CI itself and is not run here. The session starts in a scratch folder holding a ``.venv/bin/activate``
that puts the running interpreter's ``bin/`` (python, caffe-relabel) on PATH, with TMPDIR inside it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = re.compile(r"^<!-- readme-test: (?:(?P<slow>slow)|skip \((?P<why>[^)]+)\)) -->$")
# The first word of an indented block that is a command a user types (the Layout tree is not).
COMMAND_WORDS = {"make", "caffe-relabel", "python", "docker", "bash", "pip", "source", "cd", "export"}


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the block's first line in the README
    kind: str  # "shell", "python" or "other" (an indented block without prompts)
    lines: tuple[str, ...]
    mark: Optional[str] = None  # None, "slow" or "skip"
    why: str = ""


def parse(text: str) -> list[Block]:
    """Every fenced and indented block, with the marker comment just before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            end = lines.index("```", i + 1)
            lang = fence.group(1)
            kind = "python" if lang == "python" else "shell" if lang in ("sh", "bash", "console") else "other"
            body = lines[i + 1 : end]
            if kind == "shell":
                body = [f"    {b}" for b in body]
            blocks.append(_marked(lines, i, Block(i + 2, kind, tuple(body))))
            i = end + 1
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            body = list(lines[i:end])
            while body and not body[-1].strip():
                body.pop()
            kind = "shell" if body[0].lstrip().startswith("$ ") else "other"
            blocks.append(_marked(lines, i, Block(i + 1, kind, tuple(body))))
            i = end
        else:
            i += 1
    return blocks


def _marked(lines: list[str], start: int, block: Block) -> Block:
    before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
    m = MARK.match(before.strip())
    if not m:
        return block
    return Block(block.line, block.kind, block.lines, "slow" if m.group("slow") else "skip", m.group("why") or "")


@dataclass(frozen=True)
class Command:
    line: int  # README line of its ``$``
    text: str
    status: int = 0  # expected exit status
    output: tuple[str, ...] = ()  # the lines the README shows after it


def commands(block: Block) -> list[Command]:
    """Each ``$`` command of a shell block, with its shown output and expected exit status."""
    out: list[Command] = []
    rows = [line[4:] for line in block.lines]
    i = 0
    while i < len(rows):
        line, cmd = block.line + i, rows[i][2:]
        while cmd.endswith("\\") and i + 1 < len(rows):
            i += 1
            cmd += "\n" + rows[i].strip()
        i += 1
        shown = []
        while i < len(rows) and not rows[i].startswith("$ "):
            shown.append(rows[i].rstrip())
            i += 1
        if cmd.strip() == "echo $?":
            assert out and len(shown) == 1, f"README.md line {line}: `echo $?` follows no command or shows no status"
            prev = out.pop()
            out.append(Command(prev.line, prev.text, int(shown[0]), prev.output))
        else:
            out.append(Command(line, cmd, 0, tuple(shown)))
    return out


def script(steps: list[Command], outputs: Path) -> str:
    """One bash session: each command in the shell itself (``cd`` and ``source`` carry over), its output
    to ``outputs/<line>.txt``, then a check of its exit status naming its README line."""
    parts = []
    for c in steps:
        first = c.text.splitlines()[0].replace("'", "'\\''")
        parts.append(f"{{\n{c.text}\n}} > '{outputs}/{c.line}.txt' 2>&1\n__rc=$?\n"
                     f"if [ \"$__rc\" != {c.status} ]; then\n  cat '{outputs}/{c.line}.txt' >&2\n"
                     f"  echo 'README.md line {c.line}: exit '\"$__rc\"' (expected {c.status}): {first}' >&2; exit 97\nfi\n")
    return "\n".join(parts)


def steps_of(blocks: list[Block]) -> list[Command]:
    steps: list[Command] = []
    for block in blocks:
        if block.kind == "python":
            steps.append(Command(block.line, "python - <<'README_PYTHON'\n" + "\n".join(block.lines) + "\nREADME_PYTHON"))
        else:
            steps += commands(block)
    return steps


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def output_differences(shown: tuple[str, ...], got: str) -> list[str]:
    """Shown lines missing, in order, from what the command printed (progress bars aside; ``...`` skips).

    Words match exactly, and so do integers (labels, class indices, iterations); decimals within 20% or
    0.002: a probability at the stopping step moves by up to 15% between CPUs on EfficientNet-Lite0
    (README, "Measured"), a digits probability by 1.5e-3 (the regression tolerance)."""
    lines = [part.strip() for row in got.splitlines() for part in row.split("\r") if part.strip()]
    missing, at = [], 0
    for want in (w.strip() for w in shown if w.strip() and w.strip() != "..."):
        hit = next((j for j in range(at, len(lines)) if _same(want, lines[j])), None)
        if hit is None:
            missing.append(want)
        else:
            at = hit + 1
    return missing


def _same(want: str, got: str) -> bool:
    if NUMBER.sub("#", want) != NUMBER.sub("#", got):
        return False
    for a, b in zip(NUMBER.findall(want), NUMBER.findall(got)):
        if "." not in a and a != b:
            return False
        if "." in a and abs(float(a) - float(b)) > max(0.2 * abs(float(a)), 0.002):
            return False
    return True


def run_session(blocks: list[Block], scratch: Path, timeout: float) -> list[str]:
    """Run the blocks as one session; the problems found: a failed command (and then nothing after it
    ran), or shown output the command did not print."""
    activate = scratch / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    outputs, tmp = scratch / "outputs", scratch / "tmp"
    outputs.mkdir()
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("BENCH_RESULTS", None)
    steps = steps_of(blocks)
    result = subprocess.run(["bash", "--noprofile", "--norc", "-c", script(steps, outputs)], cwd=scratch, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        return [result.stderr[-4000:] or f"bash exited {result.returncode}"]
    return [f"README.md line {c.line}: not printed: {line!r}" for c in steps
            for line in output_differences(c.output, (outputs / f"{c.line}.txt").read_text())]


def _runnable(slow: bool) -> list[Block]:
    blocks = parse(README.read_text())
    opening = blocks[0]
    assert opening.lines[0].split()[:2] == ["make", "setup"], "the README no longer opens with `make setup`"
    return [b for b in blocks[1:] if b.kind in ("shell", "python") and b.mark != "skip" and (slow or b.mark != "slow")]


def test_every_command_block_is_a_prompted_shell_block_and_every_skip_says_why():
    blocks = parse(README.read_text())
    for block in blocks[1:]:
        if block.kind == "other" and block.lines:
            word = block.lines[0].split()[0]
            assert word not in COMMAND_WORDS, f"README.md line {block.line}: commands need a `$ ` prompt"
        if block.mark == "skip":
            assert block.why.strip(), f"README.md line {block.line}: a skipped block says why"
    marks = [n + 1 for n, line in enumerate(README.read_text().splitlines()) if "readme-test" in line]
    marked = {b.line for b in blocks if b.mark}
    assert len(marks) == len(marked), f"a readme-test comment at README.md lines {marks} is malformed or before no block"
    assert any(b.kind == "shell" and b.mark is None for b in blocks), "no shell block runs in the default test run"


HARNESS_README = """Intro

    $ cd "$(mktemp -d)" && echo 'p=0.4854 it: 185' && echo 'relabelling: 19%' >&2
    p=0.4900 it: 185
    $ sh -c 'exit 3'
    $ echo $?
    3

then

    $ echo 'p=0.4854 it: 186'
    p=0.4854 it: 185

and

    $ false
    output
"""


def test_the_harness_fails_on_a_failing_command_or_a_wrong_output_and_checks_exit_codes(tmp_path):
    ok, wrong, failing = parse(HARNESS_README)
    assert [(c.line, c.status, c.output) for c in commands(ok)] == [(3, 0, ("p=0.4900 it: 185",)), (5, 3, ())]
    assert run_session([ok], tmp_path / "a", 60) == []  # a decimal within tolerance; extra lines (a bar on stderr) passed over
    assert run_session([ok, wrong], tmp_path / "b", 60) == ["README.md line 11: not printed: 'p=0.4854 it: 185'"]
    problems = run_session([ok, failing], tmp_path / "c", 60)
    assert len(problems) == 1 and "README.md line 16: exit 1 (expected 0): false" in problems[0]


def _require_console_script() -> None:
    # The README promises it after `make setup`: a venv without it is a broken set-up, not a reason to skip.
    assert (Path(sys.executable).parent / "caffe-relabel").exists(), f"no caffe-relabel beside {sys.executable}"


def test_readme_shell_blocks_run(tmp_path):
    _require_console_script()
    assert run_session(_runnable(slow=False), tmp_path, timeout=600) == []


@pytest.mark.slow
def test_readme_shell_blocks_run_including_the_slow_ones(tmp_path):
    _require_console_script()
    assert run_session(_runnable(slow=True), tmp_path, timeout=3600) == []
