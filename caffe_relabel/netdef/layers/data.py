"""Blob sources and sinks: Input (the network's input), DummyData (constant blobs), Parameter (a
stored blob as a top) and Silence (consumes its bottoms, no top)."""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, constant
from caffe_relabel.netdef.layers.table import register


@register("Input", builder="data:build_input")
def _input(c: LayerCheck) -> Setup:
    """One shape for all tops, or one each."""
    c.counts((0, 0), (1, -1))
    return Setup(c.per_top("input_param.shape", [tuple(s.dim) for s in c.layer.input_param.shape]))


@register("DummyData", builder="data:build_dummy_data")
def _dummy_data(c: LayerCheck) -> Setup:
    """``shape`` or the legacy num/channels/height/width; geometry: each top's constant value."""
    c.counts((0, 0), (1, -1))
    p = c.layer.dummy_data_param
    n = len(c.layer.top)
    legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
    if not any(legacy):
        shapes = c.per_top("dummy_data_param.shape", [tuple(s.dim) for s in p.shape])
    elif len(p.shape):
        raise c.error("dummy_data_param.shape", "expected shape OR num/channels/height/width, not both")
    else:
        for name, values in zip(("num", "channels", "height", "width"), legacy):
            if len(values) not in (1, n):
                raise c.error(f"dummy_data_param.{name}", f"expected 1 or {n} values, got {len(values)}")
        shapes = tuple(tuple(v[0] if len(v) == 1 else v[i] for v in legacy) for i in range(n))
    fillers = list(p.data_filler)
    if len(fillers) not in (0, 1, n):
        raise c.error("dummy_data_param.data_filler", f"expected 0, 1 or {n} data fillers, got {len(fillers)}")
    values = []
    for i, shape in enumerate(shapes):
        if not fillers:
            values.append(0.0)
            continue
        filler = fillers[0 if len(fillers) == 1 else i]
        c.filler("dummy_data_param.data_filler", filler, shape)
        if filler.type != "constant":
            # Caffe refills a random filler every pass: the net's output would change from call to call.
            raise c.unsupported("dummy_data_param.data_filler", f"filler {filler.type!r} is random (Caffe refills it "
                                                                "every pass); expected a constant filler")
        values.append(float(filler.value))
    return Setup(shapes, geometry=tuple(values))


@register("Parameter", builder="data:build_parameter")
def _parameter(c: LayerCheck) -> Setup:
    """Its one blob (parameter_param.shape, no filler in Caffe: zeros) is its top."""
    c.counts((0, 0), (1, 1))
    shape = tuple(c.layer.parameter_param.shape.dim)
    return Setup((shape,), c.params(("parameter_param", constant(0.0), shape)))


@register("Silence", builder="data:build_silence")
def _silence(c: LayerCheck) -> Setup:
    """No top; its backward zeroes its bottoms' gradients, as an unused blob's."""
    c.counts((1, -1), (0, 0))
    return Setup(())
