"""The one registry from Caffe layer type string to engine builder.

A builder is ``builder(ctx: BuildContext) -> Built`` (see :mod:`.spec`).
Layer files register themselves with :func:`register`; registering a type
twice is refused, and a lookup miss names the layer and every known type.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..errors import CaffeRelabelError, UnsupportedLayerError

Builder = TypeVar("Builder", bound=Callable[..., object])

_BUILDERS: dict[str, Callable[..., object]] = {}


def register(*type_names: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register("ReLU")`` makes the function the builder of that type."""

    def add(builder: Builder) -> Builder:
        for name in type_names:
            if name in _BUILDERS:
                owner = _BUILDERS[name]
                raise CaffeRelabelError(
                    f"layer type {name!r} is already registered by {owner.__module__}.{owner.__qualname__}"
                )
            _BUILDERS[name] = builder
        return builder

    return add


def builder_for(layer_name: str, type_name: str) -> Callable[..., object]:
    """The builder of ``type_name``, or UnsupportedLayerError naming the layer and the known types."""
    try:
        return _BUILDERS[type_name]
    except KeyError:
        raise UnsupportedLayerError(
            f"layer {layer_name!r}: the engine does not support layer type {type_name!r}; "
            f"supported types: {', '.join(supported_types())}"
        ) from None


def supported_types() -> list[str]:
    """Every registered layer type, sorted."""
    return sorted(_BUILDERS)
