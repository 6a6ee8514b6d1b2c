"""The ImageNet photographs the benchmarks run on: a flat folder of ``<wnid>_<name>.JPEG`` files.

By default ``../shared/imagenet-sample`` beside the checkout (one real
ILSVRC-2012 photograph for each of 500 classes); the photographs are never
copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT

from caffe_relabel.experiments.sources import IMAGE_SUFFIXES, Source
from caffe_relabel.models.model import Model

DEFAULT_FOLDER = ROOT.parent / "shared" / "imagenet-sample"


def photographs(folder: Path, model: Model, count: int) -> list[Source]:
    """The first ``count`` photographs of ``folder`` by name, labelled by the WordNet id before the first '_'."""
    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < count:
        raise SystemExit(f"{folder}: expected at least {count} photographs named <wnid>_<name>.JPEG, "
                         f"found {len(files)}")
    return [Source(str(f), str(f), model.resolve(f.name.split("_", 1)[0])) for f in files[:count]]
