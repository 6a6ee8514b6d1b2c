"""A classifier together with what it takes to use it: input spec and class names."""

from __future__ import annotations

import difflib
import functools
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from caffe_relabel.backends import Classifier, load_classifier
from caffe_relabel.errors import ArgumentError, CaffeRelabelError, ModelNotFoundError
from caffe_relabel.images.preprocess import ImageLike, InputSpec, fit, image_to_blob, load_image
from caffe_relabel.models.options import RANDOM_PREFIX, ModelOptions


@dataclass(frozen=True)
class Prediction:
    """One image's class probabilities, and its top-1 label."""

    probabilities: np.ndarray  # K, float32

    @property
    def label(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def prob(self) -> float:
        return float(self.probabilities[self.label])

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most probable classes as (index, probability), best first (ties: lower index first)."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), float(self.probabilities[i])) for i in order]


@dataclass(frozen=True)
class Model:
    """A backend, the input it expects and (optionally) its class names."""

    classifier: Classifier
    input: InputSpec
    name: str = "custom"
    class_names: Optional[tuple[str, ...]] = None
    label_set: Optional[str] = None  # "imagenet", "digits" or None
    class_ids: Optional[tuple[str, ...]] = None  # a labels file's first words (WordNet ids in synset_words.txt)

    def __post_init__(self) -> None:
        if tuple(self.classifier.input_shape) != self.input.shape:
            raise ArgumentError(
                f"the network takes {list(self.classifier.input_shape)} but the input spec describes {list(self.input.shape)}"
            )
        if self.class_names is not None and len(self.class_names) != self.classifier.num_classes:
            raise ArgumentError(
                f"{len(self.class_names)} class names given for a network with {self.classifier.num_classes} classes"
            )
        if self.class_ids is not None and len(self.class_ids) != self.classifier.num_classes:
            raise ArgumentError(
                f"{len(self.class_ids)} class ids given for a network with {self.classifier.num_classes} classes"
            )

    def __repr__(self) -> str:
        # Short: the class names alone would print 25,000 characters.
        clf = self.classifier
        classes = f"{clf.num_classes}" + (f" {self.label_set}" if self.label_set else "")
        device = getattr(clf, "device", None)
        where = f", device={device!s}" if device is not None else ""
        return f"Model({self.name!r}, backend={clf.backend_name}{where}, input={self.input!r}, classes={classes})"

    @functools.cached_property
    def module(self) -> Any:
        """The model as Foolbox and torchattacks expect it: a torch.nn.Module taking N x 3 x H x W RGB
        images in [0, 1] (grey nets: N x 1 x H x W) and returning N x K logits, the input transform inside
        (:class:`~caffe_relabel.models.module.ImageModule`); engine backend only, otherwise a
        BackendUnavailableError saying why."""
        from caffe_relabel.models.module import ImageModule

        return ImageModule(self.blob_module, self.input)

    @property
    def blob_module(self) -> Any:
        """The network itself as a torch.nn.Module, in blob space: ``blob_module(blob)`` gives the logits
        for the network's own input (channel order, raw scale, mean and input scale applied); engine only."""
        return self.classifier.module

    def predict(self, image: ImageLike) -> Prediction:
        """The class probabilities of one image (a file or an H x W x C array in [0, 1]), fitted to the input
        as every command does (resize, centre crop)."""
        return self.predict_many([image])[0]

    def predict_many(self, images: Sequence[ImageLike], batch_size: int = 16) -> list[Prediction]:
        """:meth:`predict` for each image, run ``batch_size`` at a time."""
        out: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            blobs = np.stack([image_to_blob(fit(load_image(im), self.input), self.input) for im in chunk])
            out += [Prediction(p) for p in self.classifier.forward(blobs)]
        return out

    def class_name(self, index: int) -> str:
        return self.class_names[index] if self.class_names is not None else str(index)

    def resolve(self, target: "int | str") -> int:
        """A class index from an index, a WordNet id or a class name (closest matches on a miss)."""
        from caffe_relabel.models.zoo import class_index, resolve_class

        if self.label_set is not None:
            return resolve_class(target, self.label_set)
        if isinstance(target, str):
            named = self.class_names is not None and not target.strip().isdigit()
            if named and self.class_ids is not None and target in self.class_ids:
                return self.class_ids.index(target)
            if named and target in self.class_names:
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
    name_or_prototxt: "str | os.PathLike[str] | ModelOptions",
    weights: "Optional[str | os.PathLike[str]]" = None,
    *,
    input_spec: Optional[InputSpec] = None,
    backend: str = "auto",
    device: str = "cpu",
    numerics: str = "faithful",
) -> Model:
    """A zoo model by name, or any prototxt + caffemodel (then ``input_spec`` says its input);
    or, given :class:`~caffe_relabel.models.options.ModelOptions`, the model they describe (every
    option the command line takes: input transform, labels file, backend, device, numerics).

    ``backend``, ``device`` and ``numerics``: as :func:`caffe_relabel.backends.load_classifier`.
    """
    from caffe_relabel.models import zoo

    if isinstance(name_or_prototxt, ModelOptions):
        if weights is not None or input_spec is not None:
            raise ArgumentError("load_model(ModelOptions): weights and input_spec are fields of the options")
        return _load_options(name_or_prototxt)

    name = str(name_or_prototxt)
    if weights is None and name in zoo.MODELS:
        spec = zoo.get(name)
        clf = load_classifier(zoo.prototxt_path(name), zoo.weights_path(name), backend=backend, device=device,
                              numerics=numerics)
        return Model(clf, input_spec or spec.input, name, zoo.class_names(spec.classes), spec.classes)
    if weights is None and not name.endswith(".prototxt"):
        zoo.get(name)  # raises with the closest known names
    clf = load_classifier(name_or_prototxt, weights, backend=backend, device=device, numerics=numerics)
    if input_spec is None:
        raise ArgumentError(
            f"{name}: not a zoo model, so say what input it expects: input_spec=InputSpec(size=..., mean=..., channel_order=...)"
        )
    label_set = "imagenet" if clf.num_classes == 1000 else None
    names = zoo.class_names(label_set) if label_set else None
    return Model(clf, input_spec, os.path.basename(name), names, label_set)


def _load_options(options: ModelOptions) -> Model:
    """The Model ``options`` describe; its errors name the option or file at fault."""
    from caffe_relabel.models import zoo

    options.check()
    run = dict(backend=options.backend, device=options.device, numerics=options.numerics)
    if options.prototxt is None:
        name = options.model
        zoo_name = name[len(RANDOM_PREFIX):] if name.startswith(RANDOM_PREFIX) else name
        if zoo_name.endswith(".prototxt"):
            raise ModelNotFoundError(f"--model {name}: expected a zoo model name; a net definition goes in "
                                     f"--prototxt {name} --weights NET.caffemodel (with --mean or --train-val)")
        spec = zoo.get(zoo_name)  # raises with the closest known names
        if zoo_name != name:
            from caffe_relabel.models import testmodels

            prototxt, weights = testmodels.random_model(zoo_name)
        else:
            prototxt, weights = zoo.prototxt_path(name), zoo.weights_path(name)
        clf = load_classifier(prototxt, weights, **run)
        names, ids, label_set = _labels(options.labels, clf, spec.classes)
        return Model(clf, spec.input, name, names, label_set, ids)
    clf = load_classifier(options.prototxt, options.weights, **run)
    input_spec = options.input_spec(clf.input_shape)
    names, ids, label_set = _labels(options.labels, clf, "imagenet" if clf.num_classes == 1000 else None)
    try:
        return Model(clf, input_spec, Path(options.prototxt).name, names, label_set, ids)
    except ValueError as e:
        raise CaffeRelabelError(f"{options.prototxt}: {e}") from None


def _labels(path: "Optional[str | os.PathLike[str]]", clf: Classifier, label_set: Optional[str]) -> tuple:
    """(class names, class ids, label set): a labels file's, else the label set's (an ImageNet-sized net's)."""
    from caffe_relabel.models import zoo

    if path is not None:
        from caffe_relabel.models.labels import read_labels

        labels = read_labels(path, clf.num_classes)
        return labels.names, labels.ids, None
    if label_set is None:
        return None, None, None
    return zoo.class_names(label_set), None, label_set
