"""Where a report's numbers came from: package version, commit, backend, device, machine, seed, date, command."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from caffe_relabel.version import __version__

if TYPE_CHECKING:
    from caffe_relabel.models.model import Model

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Provenance:
    version: str
    commit: str  # git commit of the package's checkout, "+dirty" when it has changes; "unknown" outside git
    backend: str
    device: str
    machine: str  # CPU model and core count
    seed: int
    date: str  # UTC, ISO 8601
    command: str

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs in reading order, for the report's header."""
        return [("caffe-relabel", self.version), ("commit", self.commit), ("backend", self.backend),
                ("device", self.device), ("machine", self.machine), ("seed", str(self.seed)),
                ("date", self.date), ("command", self.command)]


def git_commit(where: Optional[Path] = None) -> str:
    """The commit of the checkout holding ``where`` (default: this package), or "unknown"."""
    root = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return UNKNOWN
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or a hung one
        return UNKNOWN
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def machine() -> str:
    """The CPU model (from /proc/cpuinfo on Linux, else the platform's word for it) and its core count."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or UNKNOWN
    return f"{model}, {os.cpu_count() or '?'} cores, {platform.system()} {platform.release()}"


def model_files(model: "Model") -> tuple[tuple[str, str], ...]:
    """(file name, sha1) of the net definition and weights a model was loaded from: what makes two
    runs of "the same" model the same network."""
    from caffe_relabel.files.download import sha1_file

    clf = model.classifier
    paths = [getattr(clf, "prototxt", None), getattr(clf, "weights", None)]
    # Weights given as arrays (the engine takes them) have no file to name.
    return tuple((Path(p).name, sha1_file(Path(p))) for p in paths if isinstance(p, (str, os.PathLike)))


def collect(backend: str, device: str, seed: int, command: str) -> Provenance:
    """The provenance of a run happening now."""
    date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return Provenance(__version__, git_commit(), backend, device, machine(), seed, date, command)
