"""The network: Caffe layers in definition order, run on PyTorch.

:func:`build_net` turns a NetParameter (current, V1 or with old input fields)
plus weights into a :class:`CaffeNet`, validating every layer against its
bottoms before any weight is converted. A :class:`CaffeNet` is a
``torch.nn.Module`` whose ``forward(x)`` returns the LOGITS: the input of
the final Softmax layer when the net ends in one (as the zoo deploy nets
do), otherwise the class scores (the net's output blob, or the bottom of a
trailing ArgMax); see :mod:`caffe_relabel.netdef.layers.head`, which also refuses
a final Softmax over another axis than the classes'. That is what attack libraries
(Foolbox, torchattacks, ...) expect from a model. ``blobs(x, names)``
returns named intermediate blobs, ``probabilities(logits)`` applies the
net's own Softmax.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
from torch import nn

from caffe_relabel.errors import ModelFormatError
from caffe_relabel.netdef.layers import ENGINE, TABLE
from caffe_relabel.netdef.layers.head import classifier_head
from caffe_relabel.netdef.netcheck import check_net
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import NetParameter
from caffe_relabel.netdef.weights import WeightsLike, check_weights
from caffe_relabel.numerics import check_numerics
from caffe_relabel.engine.device import numeric_context, resolve_device, uses_channels_last, uses_im2col
from caffe_relabel.engine.fusion import Fusion, find_fusions
from caffe_relabel.engine.spec import Build, Shape
from caffe_relabel.engine.weights import layer_tensors


@dataclass(frozen=True)
class Step:
    """One layer's place in the graph."""

    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]


class CaffeNet(nn.Module):
    """A Caffe network as a torch module; ``forward(x)`` returns the logits."""

    def __init__(self, steps: list[Step], modules: list[nn.Module], blob_shapes: dict[str, Shape],
                 input_name: str, output_name: str, logits_name: str, device: torch.device, numerics: str,
                 scores_name: Optional[str] = None, softmax_index: Optional[int] = None,
                 fusions: Sequence[Fusion] = ()) -> None:
        super().__init__()
        self.steps = steps
        # A list, not a dict: Caffe layer names may contain '.', which nn.ModuleDict refuses.
        self.layers = nn.ModuleList(modules)
        # Runs of layers computed as one (engine/fusion.py), by their first layer's index.
        self.fusions = {f.start: f for f in fusions}
        self.fused = nn.ModuleList(f.module for f in fusions)
        self.blob_shapes = blob_shapes
        self.input_name, self.output_name, self.logits_name = input_name, output_name, logits_name
        # The class scores: the output, or a trailing ArgMax's bottom.
        self.scores_name = output_name if scores_name is None else scores_name
        self.device, self.numerics = device, numerics
        self.channels_last = uses_channels_last(numerics)
        self._writer = {}  # blob -> index of the last layer that writes it (in-place layers rewrite)
        for i, step in enumerate(steps):
            for top in step.tops:
                self._writer[top] = i
        # The final Softmax layer, when the logits are its input.
        if softmax_index is None and logits_name != self.scores_name:
            softmax_index = self._writer[self.scores_name]
        self._softmax_index = softmax_index

    @property
    def input_shape(self) -> Shape:
        """The input blob's declared shape (the batch axis may vary at run time)."""
        return self.blob_shapes[self.input_name]

    @property
    def blob_names(self) -> list[str]:
        return list(self.blob_shapes)

    @property
    def layer_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def numeric_context(self) -> contextlib.AbstractContextManager[None]:
        """The numerics' settings; wrap your own backward pass on CUDA in it (on CPU the
        faithful convolutions keep their algorithm in any backward)."""
        return numeric_context(self.numerics, self.device)

    def _run(self, x: torch.Tensor, wanted: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(wanted)
        last = max(self._writer[name] for name in wanted)
        if x.dim() == 4:
            # The numerics' layout whatever the caller's strides (an NHWC numpy view arrives
            # channels-last, and would make every im2col convolution of the faithful mode copy).
            x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        blobs: dict[str, torch.Tensor] = {self.input_name: x}
        i = 0
        with self.numeric_context():
            while i <= last:
                step, module = self.steps[i], self.layers[i]
                fusion = self.fusions.get(i)
                if fusion is not None and i + fusion.span - 1 <= last and not fusion.inner & wanted:
                    step, module = self.steps[i + fusion.span - 1], fusion.module
                    bottoms = self.steps[i].bottoms
                    i += fusion.span
                else:
                    bottoms = step.bottoms
                    i += 1
                if step.type == "Input":
                    continue
                inputs = [blobs[b] for b in bottoms]
                if not (self.channels_last or getattr(module, "layout_agnostic", False)):
                    # Channels-last blobs from depthwise layers (engine/layers/conv.py): NCHW for the rest.
                    inputs = [t.contiguous() for t in inputs]
                tops = module(*inputs)
                blobs.update(zip(step.tops, tops))
        return {name: blobs[name] for name in wanted}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits (float32) for an N x C x H x W input."""
        return self._run(x, [self.logits_name])[self.logits_name].float()

    def blobs(self, x: torch.Tensor, names: Optional[Iterable[str]] = None) -> dict[str, torch.Tensor]:
        """Named blobs after a forward pass (all blobs when ``names`` is None)."""
        names = list(self.blob_shapes if names is None else names)
        for name in names:
            if name not in self._writer:
                raise ModelFormatError(f"no blob named {name!r} in this network")
        return self._run(x, names)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The net's own final Softmax applied to ``logits`` (softmax over axis 1 if it has none)."""
        if self._softmax_index is None:
            return torch.softmax(logits.flatten(1).float(), dim=1)
        return self.layers[self._softmax_index](logits)[0]


def build_net(netdef: NetParameter, weights: Optional[WeightsLike] = None, device: "str | torch.device" = "cpu",
              numerics: str = "faithful", source: str = "<net>") -> CaffeNet:
    """A :class:`CaffeNet` from a net definition and weights (caffemodel path, NetParameter,
    ``{layer: [arrays]}`` or None for constant fillers only)."""
    dev = resolve_device(device)
    check_numerics(numerics)
    # Structure, sizes and every stored blob's shape first, so that nothing below
    # allocates what a bad file declares; builders only construct modules.
    checked = check_net(netdef, source)
    TABLE.require(checked.layers, ENGINE, source)
    head = classifier_head(checked.layers, checked.blobs, ENGINE, source)
    stored = None if weights is None else check_weights(weights, checked, source)
    shapes: dict[str, Shape] = {}
    steps: list[Step] = []
    modules: list[nn.Module] = []
    for layer in checked.layers:
        setup = checked.setups[layer.name]
        blobs = layer_tensors(layer, setup.params, stored, source, dev)
        build = Build(layer, tuple(shapes[b] for b in layer.bottom), setup, blobs, dev, source,
                      uses_im2col(numerics, dev))
        modules.append(TABLE.lookup(layer.type, source).build_function()(build))
        shapes.update(zip(layer.top, setup.tops))
        steps.append(Step(layer.name, layer.type, tuple(layer.bottom), tuple(layer.top)))
    net = CaffeNet(steps, modules, shapes, checked.input, head.output, head.logits, dev, numerics, scores_name=head.scores,
                   softmax_index=head.softmax, fusions=find_fusions(checked.layers, dev))
    net.net_shapes = checked  # so a classifier can check each batch it runs (netcheck.check_batch)
    if net.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net.eval()
