"""Image batches as attack libraries hand them over: numpy or torch, N x C x H x W or N x H x W x C.

:func:`read_batch` checks a batch and gives it as float64 N x H x W x C in
[0, 1] (the loop's image layout, see :mod:`caffe_relabel.images.preprocess`), on the
device it came on; :class:`Batch` turns answers back into the caller's type,
layout, dtype and device. torch is imported only when a tensor comes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import InputSpec


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


def read_batch(x: Any, spec: InputSpec) -> Batch:
    """Check ``x`` (images in [0, 1] at the network's input size) and give it in the loop's layout."""
    c, (h, w) = spec.channels, spec.size
    tensor = is_tensor(x)
    if not (tensor or isinstance(x, np.ndarray)):
        raise ArgumentError(f"expected images as a numpy array or a torch tensor, got {type(x).__name__}")
    shape = tuple(x.shape)
    want = f"N x {c} x {h} x {w} or N x {h} x {w} x {c}"
    if len(shape) != 4:
        raise ArgumentError(f"expected a batch of images, {want}, got shape {list(shape)}")
    if shape[0] == 0:
        raise ArgumentError("expected at least one image, got an empty batch")
    if shape[1:] == (c, h, w):
        channels_first = True
    elif shape[1:] == (h, w, c):
        channels_first = False
    else:
        raise ArgumentError(f"expected images at the network's input size, {want} (resize them first), got shape {list(shape)}")
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
