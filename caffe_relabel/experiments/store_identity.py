"""What a sweep store was made with: the model, the backend, the relabelling settings and the input preprocessing.

Two stores' results are comparable only when these match (:func:`check_same`);
a store refuses results, a resume or a merge made with another identity.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.images.preprocess import InputSpec
from caffe_relabel.relabel.settings import RelabelSettings


class StoreMismatchError(CaffeRelabelError, ValueError):
    """A store made with another model or other relabelling settings."""


@dataclass(frozen=True)
class StoreIdentity:
    """What makes two stores' results comparable: the model, the backend, the relabelling settings, whole, and
    the input preprocessing."""

    model: str
    backend: str
    settings: RelabelSettings
    #: (name, sha1) of the model's definition and weights (provenance.model_files); empty in older stores.
    files: tuple[tuple[str, str], ...] = ()
    #: The model's input preprocessing (:func:`input_identity`); None in older stores.
    input: Optional[dict[str, Any]] = field(default=None, hash=False)

    def to_json(self) -> str:
        files = {"files": [list(f) for f in self.files]} if self.files else {}
        given = {"input": self.input} if self.input is not None else {}
        return json.dumps({"model": self.model, "backend": self.backend, "settings": self.settings.as_dict(), **files,
                           **given}, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "StoreIdentity":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        if "settings" not in data:
            data = _identity_v1(data)
        files = tuple((str(name), str(sha1)) for name, sha1 in data.get("files", ()))
        given = data.get("input")
        if given is not None and not isinstance(given, dict):
            raise ValueError(f"expected the input preprocessing as an object, got {type(given).__name__}")
        return cls(str(data["model"]), str(data["backend"]), RelabelSettings.from_dict(data["settings"]), files, given)


def input_identity(spec: InputSpec) -> dict[str, Any]:
    """A spec as the plain JSON values a store compares (a mean image by the sha1 of its float64 bytes)."""
    mean = np.asarray(spec.mean, dtype=np.float64)
    return {"size": [int(v) for v in spec.size], "channel_order": spec.channel_order,
            "mean": [float(v) for v in mean] if mean.ndim == 1 else
            "sha1 " + hashlib.sha1(np.ascontiguousarray(mean).tobytes()).hexdigest(),
            "resize": None if spec.resize is None else int(spec.resize), "interpolation": int(spec.interpolation),
            "resample": spec.resample, "raw_scale": float(spec.raw_scale), "input_scale": float(spec.input_scale)}


def _identity_v1(data: dict) -> dict:
    """Schema 1 stores kept five settings beside the model; they ran without confidence, in batches of 8."""
    old = {k: data[k] for k in ("alpha", "max_distortion", "max_iter", "ensure_uint8", "clip")}
    return {"model": data["model"], "backend": data["backend"],
            "settings": {**RelabelSettings().as_dict(), **old, "confidence": 0.0}}


#: Settings that do not change a result: continuous batching gives every sample the same steps at any batch size.
_NOT_COMPARED = ("batch_size",)


def check_same(have: StoreIdentity, wanted: StoreIdentity, where: str) -> None:
    """Raise StoreMismatchError naming the first differing model, backend or relabelling setting."""
    pairs = [("model", have.model, wanted.model), ("backend", have.backend, wanted.backend)]
    a, b = have.settings.as_dict(), wanted.settings.as_dict()
    pairs += [(name, a[name], b[name]) for name in RelabelSettings.names() if name not in _NOT_COMPARED]
    for name, x, y in pairs:
        if x != y:
            raise StoreMismatchError(f"{where}: made with {name}={x!r}, expected {name}={y!r}")
    if have.files and wanted.files and have.files != wanted.files:  # a store from before files were recorded: unknown
        made, expected = (", ".join(f"{n} (sha1 {s[:12]})" for n, s in f) for f in (have.files, wanted.files))
        raise StoreMismatchError(f"{where}: made with model files {made}, expected {expected}; "
                                 "sweep these weights into a new --store")
    if have.input is not None and wanted.input is not None:  # a store from before the input was recorded: unknown
        for name in dict.fromkeys([*wanted.input, *have.input]):
            x, y = have.input.get(name), wanted.input.get(name)
            if x != y:
                raise StoreMismatchError(f"{where}: made with input {name}={x!r}, expected {name}={y!r}; "
                                         "sweep this preprocessing into a new --store")
