"""Section 3.1: relabel every source image to every other class, and count successes under the cap.

The paper: 10 exemplars of each of the 1000 ImageNet classes, each relabelled
to the 999 others with distortion capped at 0.01; 98.7% succeeded.

The pair list is a pure function of the options, so a sweep can be split
into deterministic shards (``shard=(i, n)``: a pair belongs to shard
``sha1(source, target) mod n``, whatever else is in the list), stopped and
restarted at will (pairs already in the store are skipped), and its shard
stores merged afterwards.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .. import __version__
from ..errors import ArgumentError
from ..relabel import Relabeller
from ..settings import RelabelSettings
from .common import ModelRef, Stats, open_model
from .sources import Source, load_sources
from .store import StoreIdentity, StoredResult, SweepStore

#: progress(done, total): pairs of this shard stored so far, and in all.
ProgressFn = Callable[[int, int], None]

PAPER_SUCCESS_RATE = 0.987
PAPER_CAP = 0.01
PAPER_SETTINGS = RelabelSettings(max_distortion=PAPER_CAP)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) to ``(i, n)``."""
    head, sep, tail = text.partition("/")
    if not (sep and head.strip().isdigit() and tail.strip().isdigit()):
        raise ArgumentError(f"--shard: expected i/n such as 0/4, got {text!r}")
    i, n = int(head), int(tail)
    if not (n >= 1 and 0 <= i < n):
        raise ArgumentError(f"--shard: expected 0 <= i < n, got {text!r}")
    return i, n


def shard_of(source_id: str, target: int, shards: int) -> int:
    """The shard a pair belongs to: stable across runs, machines and pair lists."""
    digest = hashlib.sha1(f"{source_id}\t{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def plan_pairs(
    sources: Sequence[Source],
    num_classes: int,
    targets: Optional[Sequence[int]] = None,
    targets_per_source: Optional[int] = None,
    seed: int = 0,
) -> list[tuple[Source, int]]:
    """Every source with every other class (or those of ``targets``), optionally a seeded sample of them."""
    classes = list(range(num_classes)) if targets is None else sorted(set(int(t) for t in targets))
    rng = np.random.default_rng(seed)
    pairs = []
    for s in sources:
        others = [t for t in classes if t != s.label]
        if targets_per_source is not None and targets_per_source < len(others):
            others = sorted(rng.choice(others, size=targets_per_source, replace=False).tolist())
        pairs.extend((s, t) for t in others)
    return pairs


@dataclass(frozen=True)
class SweepSummary:
    """Success rate and costs of the results in a store."""

    model: str
    max_distortion: Optional[float]
    pairs: int
    successes: int
    success_rate: float
    uint8_success_rate: float
    distortion: Stats  # of the successes
    iterations: Stats  # of the successes
    hardest_targets: list  # [(target, success rate, pairs)], lowest rate first


@dataclass(frozen=True)
class SweepResult:
    """One (possibly resumed) run of one shard."""

    store: Path
    shard: tuple[int, int]
    planned: int
    already_stored: int
    ran: int
    summary: SweepSummary


def run_sweep(
    store: "str | os.PathLike[str]",
    model: ModelRef = "digits",
    sources: "Optional[str | os.PathLike[str]]" = None,
    per_class: Optional[int] = None,
    targets: Optional[Sequence[int]] = None,
    targets_per_source: Optional[int] = None,
    settings: RelabelSettings = PAPER_SETTINGS,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    backend: str = "auto",
    progress: Optional[ProgressFn] = None,
) -> SweepResult:
    """Run (or resume) one shard of the all-pairs sweep, storing each result as it finishes."""
    net = open_model(model, backend)
    relabeller = Relabeller(net, settings)
    identity = StoreIdentity(net.name, net.classifier.backend_name, relabeller.settings)
    srcs = load_sources(net, sources, per_class, seed)
    index, shards = shard
    planned = [(s, t) for s, t in plan_pairs(srcs, net.classifier.num_classes, targets, targets_per_source, seed)
               if shard_of(s.id, t, shards) == index]
    with SweepStore(store, identity) as db:
        db.set_meta("shard", f"{index}/{shards}")
        done = db.done()
        todo = [(s, t) for s, t in planned if (s.id, t) not in done]
        already = len(planned) - len(todo)
        if progress is not None:
            progress(already, len(planned))
        ran = 0
        for i, result in relabeller.iter_results((s.image, t) for s, t in todo):
            src = todo[i][0]
            db.add(StoredResult.from_result(src.id, src.label, result, net.name, __version__))
            ran += 1
            if progress is not None:
                progress(already + ran, len(planned))
        return SweepResult(Path(store), shard, len(planned), already, ran, summarize_store(db))


def summarize(store: "str | os.PathLike[str]") -> SweepSummary:
    """The summary of a store on disk."""
    with SweepStore(store) as db:
        return summarize_store(db)


def summarize_store(db: SweepStore) -> SweepSummary:
    rows = list(db.results())
    ok = [r for r in rows if r.success]
    per_target: dict[int, list[bool]] = {}
    for r in rows:
        per_target.setdefault(r.target, []).append(r.success)
    hardest = sorted(((t, float(np.mean(v)), len(v)) for t, v in per_target.items()), key=lambda x: (x[1], x[0]))[:5]
    n = len(rows)
    return SweepSummary(
        model=db.identity.model,
        max_distortion=db.identity.settings.max_distortion,
        pairs=n,
        successes=len(ok),
        success_rate=len(ok) / n if n else float("nan"),
        uint8_success_rate=sum(r.success and r.uint8_success for r in rows) / n if n else float("nan"),
        distortion=Stats.of([r.distortion for r in ok]),
        iterations=Stats.of([r.iterations for r in ok]),
        hardest_targets=hardest,
    )
