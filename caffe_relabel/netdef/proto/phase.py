"""Which layers a TEST-phase net keeps (Caffe's Net::FilterNet and StateMeetsRule).

Shared by the static check (:mod:`caffe_relabel.netdef.netcheck`) and the engine; no torch here.
"""

from __future__ import annotations

from typing import Iterable

from caffe_relabel.errors import ModelFormatError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import TEST, LayerParameter, NetStateRule

# The state both backends run in: Caffe's TEST phase at level 0 (pycaffe's Net sets both);
# the stages are the definition's own (`state { stage: ... }`), which Caffe keeps.
_PHASE, _LEVEL = TEST, 0


def _meets(rule: NetStateRule, stages: frozenset[str]) -> bool:
    if rule.HasField("phase") and rule.phase != _PHASE:
        return False
    if rule.HasField("min_level") and _LEVEL < rule.min_level:
        return False
    if rule.HasField("max_level") and _LEVEL > rule.max_level:
        return False
    if any(stage not in stages for stage in rule.stage):
        return False
    return not any(stage in stages for stage in rule.not_stage)


def layers_in_test_phase(layers: Iterable[LayerParameter], stages: Iterable[str],
                         source: str = "<net>") -> list[LayerParameter]:
    """The layers included in the TEST phase with the net's ``stages``, in order."""
    have = frozenset(stages)
    kept = []
    for layer in layers:
        if len(layer.include) and len(layer.exclude):
            raise ModelFormatError(f"{source}: layer {layer.name!r}: expected include OR exclude rules, not both")
        if len(layer.include):
            keep = any(_meets(rule, have) for rule in layer.include)
        else:
            keep = not any(_meets(rule, have) for rule in layer.exclude)
        if keep:
            kept.append(layer)
    return kept
