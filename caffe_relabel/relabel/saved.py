"""What a saved relabelled image is classified as, read back from the file.

A lossy format (JPEG, WebP) re-compresses the 8-bit pixels, and a
relabelling moves most pixels by less than a grey level: the saved file
may well be classified as the original class again. Reading the file
back is the only way to know.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caffe_relabel.models.model import Model

#: Suffixes whose formats :func:`caffe_relabel.images.preprocess.save_image` writes lossily (Pillow's defaults:
#: JPEG quality 75, WebP quality 80). PNG, BMP, TIFF and PPM/PGM keep 8-bit pixels exact.
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".webp")


def is_lossy(path: "str | os.PathLike[str]") -> bool:
    """Whether saving to ``path`` changes the pixels (by its suffix)."""
    return Path(path).suffix.lower() in LOSSY_SUFFIXES


@dataclass(frozen=True)
class SavedCheck:
    """A saved image read back and classified."""

    path: Path
    lossy: bool
    target: int
    confidence: float  # the target probability the relabelling asked for (0: top-1 is enough)
    label: int  # top-1 of the saved file
    prob: float  # its probability
    target_prob: float
    away: bool = False  # untargeted: ``target`` is the original label, and any other label is success

    @property
    def carries_target(self) -> bool:
        """Whether the file, as saved, is classified as the target (with ``confidence`` if asked),
        or, untargeted, as anything but the original label."""
        if self.away:
            return self.label != self.target
        return self.label == self.target and self.target_prob >= self.confidence

    def summary(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {"path": str(self.path), "lossy": self.lossy, "label": self.label, "prob": self.prob,
                "target_prob": self.target_prob, "carries_target": self.carries_target}


def check_saved(model: Model, path: "str | os.PathLike[str]", target: int, confidence: float = 0.0,
                away: bool = False) -> SavedCheck:
    """Read ``path`` back as `classify` would and say whether it still carries ``target``
    (``away``: whether it is still anything but ``target``, the original label of an untargeted run)."""
    probs = model.predict(path).probabilities
    label = int(probs.argmax())
    return SavedCheck(Path(path), is_lossy(path), int(target), float(confidence), label, float(probs[label]),
                      float(probs[target]), away)
