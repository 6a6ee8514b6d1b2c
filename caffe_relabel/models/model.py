"""A classifier together with what it takes to use it: input spec and class names."""

from __future__ import annotations

import difflib
import numbers
import os
from dataclasses import dataclass
from typing import Any, Optional

from caffe_relabel.backends import Classifier, load_classifier
from caffe_relabel.errors import ArgumentError, ModelNotFoundError
from caffe_relabel.images.preprocess import InputSpec


@dataclass(frozen=True)
class Model:
    """A backend, the input it expects and (optionally) its class names."""

    classifier: Classifier
    input: InputSpec
    name: str = "custom"
    class_names: Optional[tuple[str, ...]] = None
    label_set: Optional[str] = None  # "imagenet", "digits" or None

    def __post_init__(self) -> None:
        if tuple(self.classifier.input_shape) != self.input.shape:
            raise ArgumentError(
                f"the network takes {list(self.classifier.input_shape)} but the input spec describes {list(self.input.shape)}"
            )
        if self.class_names is not None and len(self.class_names) != self.classifier.num_classes:
            raise ArgumentError(
                f"{len(self.class_names)} class names given for a network with {self.classifier.num_classes} classes"
            )

    def __repr__(self) -> str:
        # Short: the class names alone would print 25,000 characters.
        clf = self.classifier
        classes = f"{clf.num_classes}" + (f" {self.label_set}" if self.label_set else "")
        device = getattr(clf, "device", None)
        where = f", device={device!s}" if device is not None else ""
        return f"Model({self.name!r}, backend={clf.backend_name}{where}, input={self.input!r}, classes={classes})"

    @property
    def module(self) -> Any:
        """The network as a torch.nn.Module (``module(x)`` gives the logits), where the backend has one
        (engine); otherwise a BackendUnavailableError saying why."""
        return self.classifier.module

    def class_name(self, index: int) -> str:
        return self.class_names[index] if self.class_names is not None else str(index)

    def resolve(self, target: "int | str") -> int:
        """A class index from an index, a WordNet id or a class name (closest matches on a miss)."""
        from caffe_relabel.models.zoo import class_index, resolve_class

        if self.label_set is not None:
            return resolve_class(target, self.label_set)
        if isinstance(target, str):
            if self.class_names is not None and target in self.class_names and not target.strip().isdigit():
                return self.class_names.index(target)
            index = class_index(target)
            if index is None and self.class_names is not None:
                close = difflib.get_close_matches(target, self.class_names, n=5)
                raise ModelNotFoundError(f"unknown class name {target!r}" + (f"; closest: {close}" if close else ""))
            if index is None:
                raise ModelNotFoundError(f"this model has no class names; expected a class index, got {target!r}")
        elif isinstance(target, numbers.Integral) and not isinstance(target, bool):
            index = int(target)
        else:
            raise ArgumentError(f"expected a class index or class name, got {target!r}")
        if not 0 <= index < self.classifier.num_classes:
            raise ModelNotFoundError(f"class index {index} is out of range 0..{self.classifier.num_classes - 1}")
        return index


def load_model(
    name_or_prototxt: "str | os.PathLike[str]",
    weights: "Optional[str | os.PathLike[str]]" = None,
    *,
    input_spec: Optional[InputSpec] = None,
    backend: str = "auto",
    device: str = "cpu",
    mode: str = "faithful",
) -> Model:
    """A zoo model by name, or any prototxt + caffemodel (then ``input_spec`` says its input).

    ``backend``, ``device`` and ``mode``: as :func:`caffe_relabel.backends.load_classifier`.
    """
    from caffe_relabel.models import zoo

    name = str(name_or_prototxt)
    if weights is None and name in zoo.MODELS:
        spec = zoo.get(name)
        clf = load_classifier(zoo.prototxt_path(name), zoo.weights_path(name), backend=backend, device=device,
                              mode=mode)
        return Model(clf, input_spec or spec.input, name, zoo.class_names(spec.classes), spec.classes)
    if weights is None and not name.endswith(".prototxt"):
        zoo.get(name)  # raises with the closest known names
    clf = load_classifier(name_or_prototxt, weights, backend=backend, device=device, mode=mode)
    if input_spec is None:
        raise ArgumentError(
            f"{name}: not a zoo model, so say what input it expects: input_spec=InputSpec(size=..., mean=..., channel_order=...)"
        )
    label_set = "imagenet" if clf.num_classes == 1000 else None
    names = zoo.class_names(label_set) if label_set else None
    return Model(clf, input_spec, os.path.basename(name), names, label_set)
