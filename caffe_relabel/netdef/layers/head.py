"""The classifier's head: which blob holds the class scores, checked before a backend builds the net.

Both backends read a net's class scores the same way: the net's output is
Caffe's last output blob (produced and not consumed, in sorted order). A
trailing ArgMax is skipped (it is forward only, and a relabelling needs a
gradient): the scores are its bottom. When the scores come from a final
Softmax, the gradient starts at that Softmax's input (the logits).
Refused, naming the layer and the field:

- a final Softmax that does not normalise over the class axis (axis 1 of a
  blob whose later axes all have size 1): its "probabilities" would not
  sum to 1 per sample, and the loss would not be a cross-entropy;
- an ArgMax anywhere but at the end of the net, or over another axis;
- on pycaffe, a forward-only layer (Threshold) where Caffe's backward
  runs: Caffe aborts the process there (NOT_IMPLEMENTED). The engine
  differentiates a Threshold as the step it is (gradient 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from caffe_relabel.errors import UnsupportedLayerError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter
from caffe_relabel.netdef.layers.check import Shape
from caffe_relabel.netdef.layers.table import ENGINE, PYCAFFE, TABLE


@dataclass(frozen=True)
class Head:
    output: str  # the net's output blob
    scores: str  # the blob whose values, per sample, are the class scores (probabilities after a Softmax)
    logits: str  # where the gradient is seeded: the final Softmax's bottom, else the scores
    softmax: Optional[int]  # index of the final Softmax layer
    skipped: Optional[str]  # the first layer the backward skips (the final Softmax, or a trailing ArgMax)


def net_outputs(layers: Sequence[LayerParameter]) -> list[str]:
    """Caffe's net outputs: blobs produced and not consumed afterwards, in std::set (sorted) order."""
    available: set[str] = set()
    for layer in layers:
        available.difference_update(layer.bottom)
        available.update(layer.top)
    return sorted(available)


def _writer(layers: Sequence[LayerParameter], blob: str) -> int:
    return max(i for i, layer in enumerate(layers) if blob in layer.top)


def classifier_head(layers: Sequence[LayerParameter], blobs: dict[str, Shape], backend: str, source: str) -> Head:
    """The head of a checked net (``layers`` and ``blobs`` from :func:`caffe_relabel.netdef.netcheck.check_net`)."""
    outputs = net_outputs(layers)
    if not outputs:
        raise UnsupportedLayerError(f"{source}: the net has no output blob")
    output = outputs[-1]
    last = _writer(layers, output)
    scores, end = output, last + 1
    for i, layer in enumerate(layers):
        if layer.type != "ArgMax":
            continue
        where = f"{source}: layer {layer.name!r} (ArgMax)"
        if i != last:
            raise UnsupportedLayerError(f"{where}: ArgMax has no gradient (Caffe's backward is not implemented); "
                                        f"it is accepted only as the layer that gives the net's output "
                                        f"{output!r}, where the classifier reads its bottom")
        p = layer.argmax_param
        if p.HasField("axis") and p.axis % max(len(blobs[layer.bottom[0]]), 1) != 1:
            raise UnsupportedLayerError(f"{where}: argmax_param.axis: {p.axis} is not the class axis (1); the "
                                        "classifier reads the scores per sample over axis 1")
        scores, end = layer.bottom[0], i
    writer = _writer(layers, scores)
    softmax = writer if layers[writer].type == "Softmax" else None
    if softmax is not None:
        layer = layers[softmax]
        shape = blobs[layer.bottom[0]]
        axis = layer.softmax_param.axis % len(shape)
        if axis != 1 or any(d != 1 for d in shape[2:]):
            raise UnsupportedLayerError(
                f"{source}: layer {layer.name!r} (Softmax): softmax_param.axis: the net's final Softmax normalises "
                f"over axis {axis} of a {list(shape)} blob; a classifier needs it over the class axis (axis 1, every "
                "later axis of size 1), else its probabilities do not sum to 1 per sample")
        end = softmax
    head = Head(output, scores, layers[softmax].bottom[0] if softmax is not None else scores, softmax,
                layers[end].name if end < len(layers) else None)
    if backend == PYCAFFE:
        for layer in layers[:end]:
            if not TABLE.lookup(layer.type, source).backward:
                raise UnsupportedLayerError(
                    f"{source}: layer {layer.name!r} ({layer.type}): Caffe has no backward for it and aborts the "
                    f"process when the gradient reaches it; the {ENGINE} backend differentiates it (gradient 0)")
    return head
