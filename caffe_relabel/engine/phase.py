"""Which layers a TEST-phase net keeps (Caffe's Net::FilterNet and StateMeetsRule)."""

from __future__ import annotations

from typing import Iterable

from ..errors import ModelFormatError
from ..proto.caffe_relabel_caffe_pb2 import TEST, LayerParameter, NetStateRule

# The state the engine runs in: Caffe's TEST phase, level 0, no stages.
_PHASE, _LEVEL, _STAGES = TEST, 0, frozenset()


def _meets(rule: NetStateRule) -> bool:
    if rule.HasField("phase") and rule.phase != _PHASE:
        return False
    if rule.HasField("min_level") and _LEVEL < rule.min_level:
        return False
    if rule.HasField("max_level") and _LEVEL > rule.max_level:
        return False
    if any(stage not in _STAGES for stage in rule.stage):
        return False
    return not any(stage in _STAGES for stage in rule.not_stage)


def layers_in_test_phase(layers: Iterable[LayerParameter], source: str = "<net>") -> list[LayerParameter]:
    """The layers included in the TEST phase, in order."""
    kept = []
    for layer in layers:
        if len(layer.include) and len(layer.exclude):
            raise ModelFormatError(f"{source}: layer {layer.name!r}: expected include OR exclude rules, not both")
        if len(layer.include):
            keep = any(_meets(rule) for rule in layer.include)
        else:
            keep = not any(_meets(rule) for rule in layer.exclude)
        if keep:
            kept.append(layer)
    return kept
