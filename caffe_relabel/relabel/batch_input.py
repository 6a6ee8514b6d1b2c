"""Image batches as attack libraries hand them over: numpy or torch, N x C x H x W or N x H x W x C.

:func:`read_batch` checks a batch and gives it as float64 N x H x W x C in
[0, 1] (the loop's image layout, see :mod:`caffe_relabel.images.preprocess`), on the
device it came on; :class:`Batch` turns answers back into the caller's type,
layout, dtype and device. torch is imported only when a tensor comes in.
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import InputSpec
from caffe_relabel.netdef.netcheck import MAX_NET_BYTES_ENV, max_net_bytes

LAYOUTS = ("NCHW", "NHWC")
#: Bytes relabel_batch holds per input value at once: the float64 images, float64 temporaries of the
#: blob transform, the float32 blobs and the float64 results with their copy in the caller's layout.
BYTES_PER_VALUE = 40


def is_tensor(a: Any) -> bool:
    """A torch tensor, without importing torch for numpy callers."""
    return type(a).__module__.startswith("torch") and hasattr(a, "detach")


@dataclass(frozen=True)
class Batch:
    """A checked batch: ``images`` float64 N x H x W x C (numpy, or a tensor on the input's device)."""

    images: Any
    torch: bool
    channels_first: bool
    dtype: Any
    device: Any

    def restore(self, images: Any) -> Any:
        """N x H x W x C float64 images (numpy or tensor) in the input's type, layout, dtype and device."""
        if self.torch:
            import torch

            out = images if is_tensor(images) else torch.from_numpy(np.ascontiguousarray(images))
            out = out.permute(0, 3, 1, 2) if self.channels_first else out
            return out.to(device=self.device, dtype=self.dtype).contiguous()
        out = images.detach().cpu().numpy() if is_tensor(images) else np.asarray(images)
        out = out.transpose(0, 3, 1, 2) if self.channels_first else out
        return np.ascontiguousarray(out.astype(self.dtype, copy=False))

    def wrap(self, values: np.ndarray) -> Any:
        """Per-sample values (numpy) as the input's array type, on its device."""
        if self.torch:
            import torch

            return torch.from_numpy(values).to(self.device)
        return values


def read_batch(x: Any, spec: InputSpec, layout: Optional[str] = None) -> Batch:
    """Check ``x`` (images in [0, 1] at the network's input size) and give it in the loop's layout.

    ``layout``: "NCHW" or "NHWC"; None infers it from the shape, and refuses a shape that fits
    both (H = W = channels, e.g. N x 3 x 3 x 3 for a 3 x 3 RGB net).
    """
    if layout is not None and not (isinstance(layout, str) and layout in LAYOUTS):
        raise ArgumentError(f"expected layout 'NCHW', 'NHWC' or None, got {layout!r}")
    c, (h, w) = spec.channels, spec.size
    tensor = is_tensor(x)
    if not (tensor or isinstance(x, np.ndarray)):
        raise ArgumentError(f"expected images as a numpy array or a torch tensor, got {type(x).__name__}")
    if tensor:
        _check_tensor_kind(x)
    shape = tuple(int(d) for d in x.shape)
    first, last = f"N x {c} x {h} x {w}", f"N x {h} x {w} x {c}"
    want = {"NCHW": first, "NHWC": last, None: f"{first} or {last}"}[layout]
    if len(shape) != 4:
        raise ArgumentError(f"expected a batch of images, {want}, got shape {list(shape)}")
    if shape[0] == 0:
        raise ArgumentError("expected at least one image, got an empty batch")
    nchw, nhwc = shape[1:] == (c, h, w), shape[1:] == (h, w, c)
    if layout is None and nchw and nhwc:
        raise ArgumentError(f"images of shape {list(shape)} fit both N x C x H x W and N x H x W x C: "
                            f"say which with layout='NCHW' or layout='NHWC'")
    if not (nchw and layout != "NHWC" or nhwc and layout != "NCHW"):
        raise ArgumentError(f"expected images at the network's input size, {want} (resize them first), got shape {list(shape)}")
    channels_first = nchw and layout != "NHWC"
    _check_memory(shape)
    floating = x.is_floating_point() if tensor else np.issubdtype(x.dtype, np.floating)
    if not floating:
        raise ArgumentError(f"expected floating-point images in [0, 1], got dtype {x.dtype} (8-bit pixels: divide by 255)")
    if tensor:
        images = (x.detach().permute(0, 2, 3, 1) if channels_first else x.detach()).double()
        import torch

        # One device sync: finiteness and range together.
        finite = torch.isfinite(images).all()
        both = torch.stack([(~finite).double(), images.min(), images.max()]).cpu().tolist()
        bad, low, high = bool(both[0]), both[1], both[2]
        device = x.device
    else:
        images = (x.transpose(0, 2, 3, 1) if channels_first else x).astype(np.float64)
        bad, low, high = bool(~np.isfinite(images).all()), images.min(), images.max()
        device = None
    if bad:
        raise ArgumentError("expected finite image values, got NaN or infinity")
    if low < 0.0 or high > 1.0:
        raise ArgumentError(f"expected image values in [0, 1], got {low:.4g}..{high:.4g}")
    return Batch(images, tensor, channels_first, x.dtype, device)


def _check_tensor_kind(x: Any) -> None:
    """Only dense tensors with data: a meta tensor has none, a sparse or nested one no plain strides."""
    import torch

    if x.is_meta:
        raise ArgumentError("expected images with data, got a tensor on the 'meta' device")
    if x.layout != torch.strided or getattr(x, "is_nested", False):
        raise ArgumentError(f"expected a dense (strided) tensor, got layout {x.layout} (call .to_dense() first)")


def _check_memory(shape: tuple[int, ...]) -> None:
    """Refuse a batch whose copies would not fit, from its shape alone: a zero-stride view (numpy's
    broadcast_to, torch's expand) is small itself, but every copy made of it is full-size."""
    need = math.prod(shape) * BYTES_PER_VALUE
    limit = max_net_bytes()
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)  # past the address-space limit a copy would only fail as MemoryError
    if need > limit:
        raise ArgumentError(f"a batch of {shape[0]} images needs about {need / 2**30:.3g} GiB to relabel, more than "
                            f"the {limit / 2**30:.3g} GiB allowed (set {MAX_NET_BYTES_ENV}, or pass fewer images at a time)")
