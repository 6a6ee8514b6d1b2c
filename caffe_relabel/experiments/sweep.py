"""Section 3.1: relabel every source image to every other class, and count successes under the cap.

The paper: 10 exemplars of each of the 1000 ImageNet classes, each relabelled
to the 999 others with distortion capped at 0.01; 98.7% succeeded.

The pair list is a pure function of the options, so a sweep can be split
into deterministic shards (``shard=(i, n)``: a pair belongs to shard
``sha1(source, target) mod n``, whatever else is in the list), stopped and
restarted at will (pairs already in the store are skipped), and its shard
stores merged afterwards.

At the paper's scale (10M pairs) nothing proportional to the pair count is
held in memory: the plan is generated a source at a time, the store is asked
per source which of its targets are done (one indexed query), and results
are committed in groups as they finish.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from caffe_relabel.version import __version__
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.relabeller import Relabeller
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import ModelRef, Stats, open_model
from caffe_relabel.experiments.intervals import BOOTSTRAP_MAX_N, normal
from caffe_relabel.experiments.provenance import model_files
from caffe_relabel.experiments.sources import Source, load_sources
from caffe_relabel.experiments.store import StoreIdentity, StoredResult, SweepStore
from caffe_relabel.experiments.store_identity import input_identity

#: progress(done, total): pairs of this shard done so far (the open commit group included), and in all.
ProgressFn = Callable[[int, int], None]

#: Commit groups: a GPU's thousands of results a second cost one transaction per group, not per row,
#: and a kill loses at most this many results or seconds of them.
COMMIT_ROWS = 1000
COMMIT_SECONDS = 2.0

PAPER_SUCCESS_RATE = 0.987
PAPER_CAP = 0.01
PAPER_SETTINGS = RelabelSettings(max_distortion=PAPER_CAP)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) to ``(i, n)``."""
    head, sep, tail = text.partition("/")
    if not (sep and all(part.strip().isascii() and part.strip().isdigit() for part in (head, tail))):
        raise ArgumentError(f"--shard: expected i/n such as 0/4, got {text!r}")
    i, n = int(head), int(tail)
    if not (n >= 1 and 0 <= i < n):
        raise ArgumentError(f"--shard: expected 0 <= i < n, got {text!r}")
    return i, n


def shard_of(source_id: str, target: int, shards: int) -> int:
    """The shard a pair belongs to: stable across runs, machines and pair lists."""
    digest = hashlib.sha1(f"{source_id}\t{target}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _source_rng(seed: int, source_id: str) -> np.random.Generator:
    """The target sampler of one source: depends on the seed and the source's id alone."""
    digest = hashlib.sha1(source_id.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def plan_sources(
    sources: Iterable[Source],
    num_classes: int,
    targets: Optional[Sequence[int]] = None,
    targets_per_source: Optional[int] = None,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[tuple[Source, list[int]]]:
    """Each source with its planned targets in ``shard``, lazily: one source's targets at a time.

    Every other class (or those of ``targets``), optionally a seeded sample of
    ``targets_per_source`` of them; a source's sample depends on the seed and
    its id only, not on which other sources are planned.
    """
    classes = list(range(num_classes)) if targets is None else sorted(set(int(t) for t in targets))
    index, shards = shard
    for s in sources:
        others = [t for t in classes if t != s.label]
        if targets_per_source is not None and targets_per_source < len(others):
            picked = _source_rng(seed, s.id).choice(len(others), size=targets_per_source, replace=False)
            others = [others[i] for i in sorted(picked.tolist())]
        if shards > 1:
            others = [t for t in others if shard_of(s.id, t, shards) == index]
        if others:
            yield s, others


def iter_pairs(plan: Iterable[tuple[Source, list[int]]]) -> Iterator[tuple[Source, int]]:
    """A plan (from :func:`plan_sources`) as (source, target) pairs, one at a time."""
    for s, ts in plan:
        for t in ts:
            yield s, t


def count_planned(db: SweepStore, plan: Iterable[tuple[Source, list[int]]]) -> tuple[int, int]:
    """(pairs planned, of which already stored), asking the store once per source."""
    planned = stored = 0
    # A new store holds none: a million sources are counted without a million lookups.
    empty = db.is_empty()
    for s, ts in plan:
        planned += len(ts)
        if not empty:
            stored += len(db.stored_targets(s.id).intersection(ts))
    return planned, stored


def pairs_to_do(db: SweepStore, plan: Iterable[tuple[Source, list[int]]]) -> Iterator[tuple[Source, int]]:
    """The planned pairs not yet in the store, asking it once per source as the plan reaches that source."""
    for s, ts in plan:
        done = db.stored_targets(s.id)
        for t in ts:
            if t not in done:
                yield s, t


def store_results(
    db: SweepStore,
    relabeller: Relabeller,
    pairs: Iterable[tuple[Source, int]],
    model_name: str,
    commit_rows: int = COMMIT_ROWS,
    commit_seconds: float = COMMIT_SECONDS,
    on_result: Optional[Callable[[], None]] = None,
) -> int:
    """Relabel ``pairs`` and store each result, committed in groups; returns how many ran.

    Only the pairs in flight (about a batch) and the open commit group are held in memory.
    ``on_result()`` is told after each result joins the open group.
    """
    in_flight: dict[int, Source] = {}

    def images() -> Iterator[tuple[Union[str, np.ndarray], int]]:
        for i, (s, t) in enumerate(pairs):
            in_flight[i] = s
            yield s.image, t

    ran = 0
    with db.grouped(commit_rows, commit_seconds) as writer:
        for i, result in relabeller.iter_results(images()):
            src = in_flight.pop(i)
            writer.add(StoredResult.from_result(src.id, src.label, result, model_name, __version__))
            ran += 1
            if on_result is not None:
                on_result()
    return ran


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
    sources: "Optional[str | os.PathLike[str] | Sequence[Source]]" = None,
    per_class: Optional[int] = None,
    targets: Optional[Sequence[int]] = None,
    targets_per_source: Optional[int] = None,
    settings: RelabelSettings = PAPER_SETTINGS,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    backend: str = "auto",
    progress: Optional[ProgressFn] = None,
    commit_rows: int = COMMIT_ROWS,
    commit_seconds: float = COMMIT_SECONDS,
) -> SweepResult:
    """Run (or resume) one shard of the all-pairs sweep, storing results in commit groups as they finish.

    ``sources``: a folder or list file (see :func:`load_sources`), or Source objects already made.
    A kill loses at most the open group (``commit_rows`` results, or ``commit_seconds`` of them),
    which a resume recomputes.
    """
    net = open_model(model, backend)
    relabeller = Relabeller(net, settings)
    identity = StoreIdentity(net.name, net.classifier.backend_name, relabeller.settings, model_files(net),
                             input_identity(net.input))
    if isinstance(sources, (list, tuple)):
        if per_class is not None:
            raise ArgumentError("per_class picks from a folder or list file; got Source objects already picked")
        srcs: Sequence[Source] = sources
    else:
        srcs = load_sources(net, sources, per_class, seed)
    num_classes = net.classifier.num_classes

    def plan() -> Iterator[tuple[Source, list[int]]]:
        return plan_sources(srcs, num_classes, targets, targets_per_source, seed, shard)

    # The largest batch the loop will run, checked as the backend checks each batch: refused now, before
    # the store is made, not after the loop has loaded that many images for it.
    net.classifier._check_batch(_first_batch(plan(), relabeller.settings.batch_size))
    index, shards = shard
    with SweepStore(store, identity) as db:
        db.set_meta("shard", f"{index}/{shards}")
        planned, already = count_planned(db, plan())
        if progress is not None:
            progress(already, planned)
        done = already

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, planned)

        ran = store_results(db, relabeller, pairs_to_do(db, plan()), net.name, commit_rows, commit_seconds, tick)
        return SweepResult(Path(store), shard, planned, already, ran, summarize_store(db))


def _first_batch(plan: Iterable[tuple[Source, list[int]]], batch_size: int) -> int:
    """How many pairs the loop's first batch holds (at least 1): the plan is read only that far."""
    n = 0
    for _, targets in plan:
        n += len(targets)
        if n >= batch_size:
            return batch_size
    return max(n, 1)


def summarize(store: "str | os.PathLike[str]") -> SweepSummary:
    """The summary of a store on disk."""
    with SweepStore(store) as db:
        return summarize_store(db)


def summarize_store(db: SweepStore) -> SweepSummary:
    """Counted in SQL: a store of millions of results is never read into memory."""
    n, successes, uint8_successes = db.tally()
    return SweepSummary(
        model=db.identity.model,
        max_distortion=db.identity.settings.max_distortion,
        pairs=n,
        successes=successes,
        success_rate=successes / n if n else float("nan"),
        uint8_success_rate=uint8_successes / n if n else float("nan"),
        distortion=_success_stats(db, "distortion"),
        iterations=_success_stats(db, "iterations"),
        hardest_targets=db.lowest_target_rates(5),
    )


def _success_stats(db: SweepStore, column: str) -> Stats:
    """Stats of a column over the successes, with the mean's interval: bootstrapped from the values where
    :func:`intervals.mean` would, else from the moments counted in SQL (a store of millions stays unread)."""
    n, m, std, lo, hi = db.success_stats(column)
    if n <= BOOTSTRAP_MAX_N:
        return Stats.of(db.success_values(column))
    ci = normal(m, std * math.sqrt(n / (n - 1)), n)  # SQL gives the population std
    return Stats(n, m, std, lo, hi, ci.low, ci.high)

