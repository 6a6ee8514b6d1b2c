"""Softmax over one axis (softmax_layer.cpp: subtract the max, exp, normalize)."""

from __future__ import annotations

import torch

from caffe_relabel.engine.spec import Build, CaffeLayer


class Softmax(CaffeLayer):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # float32 even under autocast: probabilities feed the loss and the stop test.
        return (torch.softmax(x.float(), dim=self.axis),)


def build_softmax(b: Build) -> Softmax:
    return Softmax(b.geometry)
