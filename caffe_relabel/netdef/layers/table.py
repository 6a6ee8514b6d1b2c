"""The one table of Caffe layer types: each type is registered here once.

An entry (:class:`LayerType`) holds everything the project knows about a
type: its static rule (shape inference and Caffe's set-up checks, torch-free,
run by :func:`caffe_relabel.netdef.netcheck.check_net`), whether Caffe runs it in
place correctly, which backends run it, and the name of its engine builder,
resolved only when the engine builds a net (so the static check never
imports torch). As Caffe's layer_factory: registering a type twice is
refused, and a lookup miss lists every known type.

Adding a layer type (one place): in the family file under
``caffe_relabel/netdef/layers/`` (or a new one, imported by ``__init__``), write its
rule ``rule(c: LayerCheck) -> Setup`` and decorate it::

    @register("Swish", builder="neuron:build_swish", in_place=True)
    def _swish(c: LayerCheck) -> Setup: ...

then write the builder it names, ``build_swish(b: Build) -> CaffeLayer`` in
``caffe_relabel/engine/layers/neuron.py``: it receives the rule's Setup
(tops, parameter shapes, derived geometry) and the loaded parameter tensors,
and only constructs the module. Every check and every derived number
belongs in the rule. tests/layers/test_table.py fails until both exist.
A type the engine cannot run has ``backends=PYCAFFE_ONLY`` and no builder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from caffe_relabel.errors import CaffeRelabelError, UnsupportedLayerError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter
from caffe_relabel.netdef.layers.check import LayerCheck, Setup

Rule = Callable[[LayerCheck], Setup]

ENGINE, PYCAFFE = "engine", "pycaffe"
BOTH = frozenset({ENGINE, PYCAFFE})
PYCAFFE_ONLY = frozenset({PYCAFFE})
# Where builders live: "conv:build_convolution" is caffe_relabel.engine.layers.conv.build_convolution.
BUILDER_PACKAGE = "caffe_relabel.engine.layers"


@dataclass(frozen=True)
class LayerType:
    """One Caffe layer type: its rule, in-place use, backends and engine builder."""

    name: str
    rule: Rule
    builder: Optional[str]  # "module:function" under BUILDER_PACKAGE; None when the engine lacks it
    in_place: bool
    backends: frozenset[str]
    # False where Caffe's Backward_cpu is NOT_IMPLEMENTED (it aborts the process): forward only.
    backward: bool = True

    def build_function(self) -> Callable[..., object]:
        """The engine builder (imports the engine, and torch, on first use)."""
        if self.builder is None:
            raise UnsupportedLayerError(f"layer type {self.name!r} has no engine builder")
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(f"{BUILDER_PACKAGE}.{module}"), function)


class LayerTable:
    """Layer types by name; :data:`TABLE` is the project's."""

    def __init__(self) -> None:
        self._types: dict[str, LayerType] = {}

    def register(self, name: str, builder: Optional[str], in_place: bool = False,
                 backends: frozenset[str] = BOTH, backward: bool = True) -> Callable[[Rule], Rule]:
        """Decorator: ``rule`` is the static rule of layer type ``name``."""

        def add(rule: Rule) -> Rule:
            if name in self._types:
                owner = self._types[name].rule
                raise CaffeRelabelError(f"layer type {name!r} is already registered by "
                                        f"{owner.__module__}.{owner.__qualname__}")
            if (builder is None) == (ENGINE in backends):
                raise CaffeRelabelError(f"layer type {name!r}: expected a builder exactly when the engine runs it")
            self._types[name] = LayerType(name, rule, builder, in_place, frozenset(backends), backward)
            return rule

        return add

    def lookup(self, name: str, where: str) -> LayerType:
        """The entry of ``name``, or UnsupportedLayerError at ``where`` listing the known types."""
        try:
            return self._types[name]
        except KeyError:
            raise UnsupportedLayerError(f"{where}: layer type {name!r} is not supported; "
                                        f"supported types: {', '.join(self.names())}") from None

    def names(self, backend: Optional[str] = None) -> list[str]:
        """Every registered type (run by ``backend``, when given), sorted."""
        return sorted(n for n, t in self._types.items() if backend is None or backend in t.backends)

    def entries(self) -> list[LayerType]:
        return [self._types[n] for n in self.names()]

    def in_place_names(self) -> list[str]:
        return [t.name for t in self.entries() if t.in_place]

    def require(self, layers: Iterable[LayerParameter], backend: str, source: str) -> None:
        """Refuse the first layer whose type ``backend`` does not run, naming the backends that do."""
        for layer in layers:
            entry = self.lookup(layer.type, f"{source}: layer {layer.name!r}")
            if backend not in entry.backends:
                raise UnsupportedLayerError(
                    f"{source}: layer {layer.name!r}: layer type {layer.type!r} runs on the "
                    f"{' and '.join(sorted(entry.backends))} backend only, not on {backend}")


#: The project's layer types; the family modules of this package fill it when imported.
TABLE = LayerTable()
register = TABLE.register
