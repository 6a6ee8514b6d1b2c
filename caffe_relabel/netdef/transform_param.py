"""A data layer's ``transform_param`` in a train_val prototxt, read as an input transform.

A deploy net says nothing of how its input was made; the train_val net it
was trained with does, in its data layer's ``transform_param``. Read here
from the TEST-phase data layer (the one validation ran through):

- ``mean_value`` (one value for every channel, or one per channel) or
  ``mean_file`` (a binaryproto; a relative path is looked up from the current
  folder, as Caffe does, then from the prototxt's folder), on the 0..255 scale;
- ``scale``, multiplied after the mean is subtracted (Caffe's order);
- ``crop_size``: must be 0 or the deploy net's input size (the crop is the
  input size, centred, as Caffe crops at test time).

Ignored, and why: ``mirror`` (a random flip, a training augmentation: the
relabelled image must be one fixed input); ``force_color``/``force_gray``
(how the training data was decoded: the channel order is the caller's).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from caffe_relabel.errors import ModelFormatError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class TransformParam:
    """What a transform_param says: mean (None: none subtracted) and scale."""

    mean: Optional[Union[tuple[float, ...], np.ndarray]]
    scale: float


def read_transform_param(path: PathLike, size: tuple[int, int], channels: int) -> TransformParam:
    """The TEST-phase ``transform_param`` of the train_val prototxt at ``path``, checked
    against a deploy net of input ``size`` (H, W) and ``channels``; errors name the file and the field."""
    from caffe_relabel.netdef.proto.io import read_mean, read_net
    from caffe_relabel.netdef.proto.phase import layers_in_test_phase
    from caffe_relabel.netdef.proto.upgrade import needs_upgrade, upgrade_net

    source = str(path)
    net = read_net(path)
    if needs_upgrade(net):  # V1 data layers kept scale/mean_file/crop_size in data_param
        net = upgrade_net(net, source)
    found = [layer for layer in layers_in_test_phase(net.layer, net.state.stage, source) if layer.HasField("transform_param")]
    if not found:
        raise ModelFormatError(f"{source}: no layer of the TEST phase has a transform_param")
    first = found[0].transform_param
    for layer in found[1:]:
        if layer.transform_param.SerializeToString(deterministic=True) != first.SerializeToString(deterministic=True):
            raise ModelFormatError(
                f"{source}: layers {found[0].name!r} and {layer.name!r} have different transform_params in the TEST phase; "
                "expected one input transform"
            )
    where = f"{source}: layer {found[0].name!r}: transform_param"
    t = first
    if not (math.isfinite(t.scale) and t.scale > 0):
        raise ModelFormatError(f"{where}.scale: expected a finite number > 0, got {t.scale!r}")
    if t.crop_size and (t.crop_size, t.crop_size) != tuple(size):
        raise ModelFormatError(
            f"{where}.crop_size: {t.crop_size} does not match the deploy net's input {size[0]} x {size[1]}"
        )
    if t.HasField("mean_file") and len(t.mean_value):
        raise ModelFormatError(f"{where}: expected mean_file or mean_value, not both (Caffe refuses both)")
    mean: Optional[Union[tuple[float, ...], np.ndarray]] = None
    if len(t.mean_value):
        values = tuple(float(v) for v in t.mean_value)
        if len(values) not in (1, channels):
            raise ModelFormatError(f"{where}.mean_value: expected 1 or {channels} values, got {len(values)}")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ModelFormatError(f"{where}.mean_value: expected finite values >= 0, got {list(values)}")
        mean = values * (channels // len(values))
    elif t.HasField("mean_file"):
        file = _mean_path(t.mean_file, Path(path), where)
        mean = read_mean(file)
        if mean.shape[0] != channels or mean.shape[1] < size[0] or mean.shape[2] < size[1]:
            raise ModelFormatError(
                f"{where}.mean_file: {file} holds a mean of shape {list(mean.shape)}, "
                f"expected {channels} channels covering {size[0]} x {size[1]}"
            )
    return TransformParam(mean=mean, scale=float(t.scale))


def _mean_path(name: str, prototxt: Path, where: str) -> Path:
    tried = [Path(name)] if Path(name).is_absolute() else [Path(name), prototxt.parent / name]
    for p in tried:
        if p.exists():
            return p
    raise ModelFormatError(f"{where}.mean_file: {name!r} not found (looked for {', '.join(str(p) for p in tried)})")
