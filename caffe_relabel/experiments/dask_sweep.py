"""Run a sweep's shards on a Dask cluster (optional extra: ``pip install caffe-relabel[dask]``).

Each task runs one shard into its own store, on whatever worker gets it, so
a lost worker costs only its shard's unfinished pairs: rerunning the same
call resumes them. The shard stores are then merged into one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from caffe_relabel.files.atomic_write import make_dir
from caffe_relabel.errors import ArgumentError, BackendUnavailableError
from caffe_relabel.models.options import ModelOptions
from caffe_relabel.experiments.store import MergeResult, merge_stores
from caffe_relabel.experiments.sweep import SweepResult, run_sweep


@dataclass(frozen=True)
class DaskSweepResult:
    """The shard runs and their merge."""

    shards: list[SweepResult]
    merged: MergeResult


def shard_store(out_dir: "str | os.PathLike[str]", index: int, shards: int) -> Path:
    """Where shard ``index`` of ``shards`` keeps its results."""
    return Path(out_dir) / f"shard-{index:04d}-of-{shards:04d}.sqlite"


def run_sweep_dask(
    client: Any,
    out_dir: "str | os.PathLike[str]",
    shards: int,
    merged: "Optional[str | os.PathLike[str]]" = None,
    **sweep_options: Any,
) -> DaskSweepResult:
    """Submit one task per shard to ``client`` (a ``distributed.Client``), then merge the stores.

    ``sweep_options`` are :func:`run_sweep`'s (model must be a name or ModelOptions: workers load their own copy).
    """
    try:
        import distributed  # noqa: F401  (the client came from it; fail clearly if the extra is missing)
    except ImportError as e:
        raise BackendUnavailableError(f"dask dispatch needs the dask extra (pip install 'dask[distributed]'): {e}") from None
    if shards < 1:
        raise ArgumentError(f"expected shards >= 1, got {shards}")
    if not isinstance(sweep_options.get("model", "digits"), (str, ModelOptions)):
        raise ArgumentError("expected the model as a name or ModelOptions: each worker loads its own copy")
    make_dir(out_dir)
    futures = [
        client.submit(run_sweep, shard_store(out_dir, i, shards), shard=(i, shards), pure=False, **sweep_options)
        for i in range(shards)
    ]
    results: list[SweepResult] = client.gather(futures)
    target = merged if merged is not None else Path(out_dir) / "merged.sqlite"
    return DaskSweepResult(results, merge_stores(target, [r.store for r in results]))
