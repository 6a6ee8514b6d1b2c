"""Pooling (MAX, AVE, global), with Caffe's geometry (pooling_layer.cpp).

The one implementation of Caffe's pooling arithmetic: output sizes round UP
by default (round_mode CEIL), and with padding a last window that would
start in the padding is dropped. The engine pools (and LRN within a channel
averages) over the :class:`PoolWindow` computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import PoolingParameter
from caffe_relabel.netdef.layers.check import LayerCheck, Setup
from caffe_relabel.netdef.layers.table import register


@dataclass(frozen=True)
class PoolWindow:
    """Method, kernel, stride, pad and pooled size per spatial axis (h, w), and the input size."""

    method: int  # PoolingParameter.MAX or AVE
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]
    size: tuple[int, int]
    ceil: bool


def pool_window(c: LayerCheck, p: PoolingParameter, height: int, width: int) -> PoolWindow:
    """PoolingLayer::LayerSetUp's checks and the pooled size (ceil, last window inside)."""
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise c.error("pooling_param.kernel_size", "with global_pooling the kernel size cannot be specified")
        kernel = (height, width)
    elif p.HasField("kernel_size") == (p.HasField("kernel_h") and p.HasField("kernel_w")):
        raise c.error("pooling_param.kernel_size", "expected kernel_size OR both kernel_h and kernel_w")
    else:
        kernel = (p.kernel_size, p.kernel_size) if p.HasField("kernel_size") else (p.kernel_h, p.kernel_w)
    for name in ("pad", "stride"):
        if p.HasField(name) and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w")):
            raise c.error(f"pooling_param.{name}", f"expected {name} OR {name}_h and {name}_w")
        if p.HasField(f"{name}_h") != p.HasField(f"{name}_w"):
            raise c.error(f"pooling_param.{name}_h", f"expected both {name}_h and {name}_w")
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad, p.pad)
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride, p.stride)
    c.int_field("pooling_param.kernel_size", kernel, low=1)
    c.int_field("pooling_param.stride", stride, low=1)
    c.int_field("pooling_param.pad", pad)
    if p.global_pooling and (pad != (0, 0) or stride != (1, 1)):
        raise c.error("pooling_param.global_pooling", "with global_pooling only pad 0 and stride 1 are allowed")
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise c.error("pooling_param.pad", f"expected pad {list(pad)} smaller than the kernel {list(kernel)}")
    ceil = p.round_mode == PoolingParameter.CEIL
    out = []
    for size, k, s, pd in zip((height, width), kernel, stride, pad):
        c.int_field("pooling_param.pad", [size + 2 * pd])  # Caffe's int arithmetic
        if k > size + 2 * pd:
            raise c.error("pooling_param.kernel_size", f"kernel {k} is larger than the padded input ({size} + 2 x {pd})")
        span = size + 2 * pd - k
        n = (-(-span // s) if ceil else span // s) + 1
        n = n - 1 if pd and (n - 1) * s >= size + pd else n
        if (n - 1) * s - pd >= size:
            # Only without padding and with stride > kernel: Caffe's MAX backward then writes
            # through index -1 (heap corruption), and AVE divides by a non-positive count.
            raise c.unsupported("pooling_param.stride", f"the last window starts outside the input (size {size}, "
                                                        f"kernel {k}, stride {s})")
        out.append(n)
    return PoolWindow(p.pool, kernel, stride, pad, (out[0], out[1]), (height, width), ceil)


@register("Pooling", builder="pooling:build_pooling")
def _pooling(c: LayerCheck) -> Setup:
    p = c.layer.pooling_param
    if len(c.layer.top) > 1:
        raise c.unsupported("top", "the second (max-index mask) top of Pooling is not supported")
    shape = c.four_axes()
    if p.pool == PoolingParameter.STOCHASTIC:
        raise c.unsupported("pooling_param.pool", "STOCHASTIC pooling is random, and not implemented on CPU by Caffe")
    window = pool_window(c, p, shape[2], shape[3])
    return Setup(((shape[0], shape[1]) + window.out,), geometry=window)
