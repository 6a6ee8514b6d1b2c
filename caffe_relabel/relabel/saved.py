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
from typing import Any, Optional

from caffe_relabel.models.model import Model
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.goals import Goal, TargetClass

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
    goal: Goal
    aim: int  # the class the relabelling followed (untargeted: the original label)
    label: int  # top-1 of the saved file
    prob: float  # its probability
    aim_prob: float  # the probability of ``aim``

    @property
    def carries_target(self) -> bool:
        """Whether the file, as saved, still meets the relabelling's goal (the loop's own rule)."""
        return self.goal.reached(self.label, self.prob, self.aim)

    def summary(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {"path": str(self.path), "lossy": self.lossy, "label": self.label, "prob": self.prob,
                "target_prob": self.aim_prob, "carries_target": self.carries_target}


def check_saved(model: Model, path: "str | os.PathLike[str]", goal: Goal, aim: Optional[int] = None) -> SavedCheck:
    """Read ``path`` back as `classify` would and say whether it still meets ``goal``; ``aim``: the class
    the relabelling followed (a result's ``aim``), needed where the goal's class came from the image
    (untargeted: the original label); a :class:`TargetClass`'s is its target."""
    if aim is None:
        if not isinstance(goal, TargetClass):
            raise ArgumentError(f"a {goal.name} goal needs aim=, the class the relabelling followed")
        aim = goal.target
    probs = model.predict(path).probabilities
    label = int(probs.argmax())
    return SavedCheck(Path(path), is_lossy(path), goal, int(aim), label, float(probs[label]), float(probs[aim]))
