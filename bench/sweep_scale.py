"""The sweep at the paper's scale: planner memory and results/s through the store (issue 15, item 6).

A stub classifier answers instantly (the target wins after ``target % 3``
steps), so what is timed is the planner, the Relabeller's bookkeeping and
the SQLite store, not a network. Plans 10,000 synthetic sources x 999
targets (about 10M pairs), then:

- planning: walks the whole plan as a sweep does (pairs planned and already
  stored, one store query per source), peak RSS after;
- streaming: the first ``--prefix`` pairs relabelled and stored in commit
  groups of ``--commit-rows``, results/s and peak RSS after;
- resume: reopening that store (its integrity checks included) and
  re-planning all 10M pairs, which must skip exactly the stored prefix;
- the store alone: pre-made rows written one transaction per row vs one
  per group.

Peak RSS is the process's high-water mark (VmHWM), so each figure covers
everything before it. JSON to bench/results/sweep_scale.json.

    python bench/sweep_scale.py            # a few minutes
    python bench/sweep_scale.py --sources 100 --prefix 2000 --out /tmp/x.json   # seconds
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/sweep_scale.py` from anywhere
    sys.path.insert(0, str(ROOT))

from caffe_relabel import RelabelSettings  # noqa: E402
from caffe_relabel.errors import CaffeRelabelError  # noqa: E402
from caffe_relabel.backends.base import Classifier, LossGradient  # noqa: E402
from caffe_relabel.experiments.sources import Source  # noqa: E402
from caffe_relabel.experiments.store import StoreIdentity, StoredResult, SweepStore  # noqa: E402
from caffe_relabel.experiments.sweep import (  # noqa: E402
    COMMIT_ROWS, PAPER_SETTINGS, count_planned, pairs_to_do, plan_sources, store_results, summarize_store,
)
from caffe_relabel.models.model import Model  # noqa: E402
from caffe_relabel.images.preprocess import InputSpec  # noqa: E402
from caffe_relabel.relabel.relabeller import Relabeller  # noqa: E402

CLASSES = 1000
GREY = 128  # every synthetic source is a flat grey image at this level
SPEC = InputSpec(size=(2, 2), channel_order="GREY", mean=(0.0,), resize=None)


class InstantClassifier(Classifier):
    """Answers at once: the target wins once the input has taken ``target % 3`` steps down from GREY.

    The gradient is all ones, so each of the Relabeller's steps lowers every
    pixel by alpha/255; the step count is read back from the input itself.
    """

    backend_name = "stub"

    def __init__(self, alpha: float) -> None:
        self._input_shape = SPEC.shape
        self._num_classes = CLASSES
        self._step = alpha / 255.0

    @property
    def blob_names(self) -> list[str]:
        return []

    def _probs(self, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
        steps = np.rint((GREY - x.reshape(len(x), -1).mean(axis=1)) / self._step)
        winner = np.where(steps >= targets % 3, targets, (targets + 1) % CLASSES)
        probs = np.full((len(x), CLASSES), 0.5 / (CLASSES - 1), dtype=np.float32)
        probs[np.arange(len(x)), winner] = 0.5
        return probs

    def forward(self, x: np.ndarray) -> np.ndarray:
        # forward has no targets: the 8-bit check reads the image's own step count against target 0's rule.
        return self._probs(x, np.zeros(len(x), dtype=np.int64))

    def loss_and_gradient(self, x: np.ndarray, targets: Sequence[int]) -> LossGradient:
        t = np.asarray(targets, dtype=np.int64)
        probs = self._probs(x, t)
        return LossGradient(probs, -np.log(probs[np.arange(len(x)), t].astype(np.float64)), np.ones_like(x))

    def blob(self, x: np.ndarray, name: str) -> np.ndarray:
        raise CaffeRelabelError(f"the stub classifier has no blob {name!r}")


def synthetic_sources(n: int) -> list[Source]:
    """``n`` tiny flat images sharing one array, labelled round the classes (n/1000 per class)."""
    image = np.full((2, 2, 1), GREY / 255.0)
    return [Source(f"syn/{i:06d}", image, i % CLASSES) for i in range(n)]


def peak_rss_mb() -> float:
    """The process's resident high-water mark (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _rows(n: int) -> list[StoredResult]:
    return [StoredResult(f"row/{i // 999:06d}", i % 999, 0, True, "target", 1, 0.001, 0, 0.9, i % 999, 0.5, 0.5,
                         [[i % 999, 0.5], [0, 0.4]], i % 999, True, 0.001, "stub", "bench") for i in range(n)]


def store_only(folder: Path, identity: StoreIdentity, rows: int, group: int) -> float:
    """Rows/s writing pre-made results through a GroupWriter of ``group`` rows."""
    made = _rows(rows)
    path = folder / f"store_only_{group}.sqlite"
    with SweepStore(path, identity) as db:
        start = time.perf_counter()
        with db.grouped(group, float("inf")) as writer:
            for r in made:
                writer.add(r)
        seconds = time.perf_counter() - start
        assert db.count() == rows
    return rows / seconds


def main(argv: "list[str] | None" = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", type=int, default=10_000, help="synthetic sources (x 999 targets each)")
    p.add_argument("--prefix", type=int, default=200_000, help="pairs relabelled and stored")
    p.add_argument("--commit-rows", type=int, default=COMMIT_ROWS)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--store-only-rows", type=int, default=20_000, help="pre-made rows for the store-alone rates")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results") / "sweep_scale.json")
    args = p.parse_args(argv)

    settings = PAPER_SETTINGS.replace(batch_size=args.batch_size)
    model = Model(InstantClassifier(settings.alpha), SPEC, "stub", label_set=None)
    relabeller = Relabeller(model, settings)
    identity = StoreIdentity("stub", "stub", relabeller.settings)
    out: dict = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
                 "sources": args.sources, "classes": CLASSES, "batch_size": args.batch_size,
                 "commit_rows": args.commit_rows, "note": "peak RSS is the process high-water mark (VmHWM)"}
    out["rss_after_imports_mb"] = rss_mb()
    sources = synthetic_sources(args.sources)

    def plan():
        return plan_sources(sources, CLASSES, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "sweep.sqlite"
        with SweepStore(store, identity) as db:
            start = time.perf_counter()
            planned, already = count_planned(db, plan())
            out["planned_pairs"] = planned
            out["plan_seconds"] = time.perf_counter() - start
            out["plan_peak_rss_mb"] = peak_rss_mb()
            assert already == 0

            start = time.perf_counter()
            todo = itertools.islice(pairs_to_do(db, plan()), args.prefix)
            ran = store_results(db, relabeller, todo, model.name, args.commit_rows, float("inf"))
            seconds = time.perf_counter() - start
            out["streamed_results"] = ran
            out["stream_seconds"] = seconds
            out["results_per_s"] = ran / seconds
            out["stream_peak_rss_mb"] = peak_rss_mb()
            start = time.perf_counter()
            summary = summarize_store(db)
            out["summary_seconds"] = time.perf_counter() - start
            assert summary.pairs == ran and summary.successes == ran, summary

        # Resume: reopening checks every stored row; re-planning skips exactly the stored prefix.
        start = time.perf_counter()
        with SweepStore(store, identity) as db:
            out["reopen_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            planned_again, stored = count_planned(db, plan())
            out["replan_seconds"] = time.perf_counter() - start
            assert (planned_again, stored) == (planned, ran), (planned_again, stored)
            first = next(pairs_to_do(db, plan()), None)
            expected = next(itertools.islice(itertools.chain.from_iterable(
                ((s.id, t) for t in ts) for s, ts in plan()), ran, None), None)
            assert (first[0].id, first[1]) == expected, (first, expected)
        out["resume_peak_rss_mb"] = peak_rss_mb()

        out["store_only_rows_per_s"] = {
            "1": store_only(folder, identity, args.store_only_rows // 10, 1),
            str(args.commit_rows): store_only(folder, identity, args.store_only_rows, args.commit_rows),
        }
    out["final_peak_rss_mb"] = peak_rss_mb()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
