"""Argument types shared by the commands: each refuses a bad value as a usage error (exit 2), naming it."""

from __future__ import annotations

import argparse
import math
from typing import Optional

from caffe_relabel.devices import parse_device
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.settings import RelabelSettings

#: --max-distortion values that mean "no cap".
NO_CAP = ("none", "0")

#: Every relabelling option's default, from the one place that holds them.
DEFAULTS = RelabelSettings()


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int(text, 1)


def natural_int(text: str) -> int:
    """An integer >= 0."""
    return _int(text, 0)


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """Any finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def device(text: str) -> str:
    """cpu, gpu:N or cuda:N (N may be left out: GPU 0); what both backends accept."""
    try:
        parse_device(text)
    except ArgumentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text.strip().lower()


def cap(text: str) -> Optional[float]:
    """A distortion cap > 0, or ``none``/``0`` for no cap; a negative cap is refused, never read as "none"."""
    if text.strip().lower() in NO_CAP:
        return None
    value = finite_float(text)
    if value == 0.0:
        return None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a cap > 0, or 0/none for no cap, got {text!r}")
    return value


def add_relabel_options(g: "argparse._ArgumentGroup", default_cap: Optional[float]) -> None:
    """The RelabelSettings a command takes from its user (batch size and confidence where the command has them)."""
    g.add_argument("--alpha", type=finite_float, default=DEFAULTS.alpha,
                   help=f"step: each iteration moves a pixel by alpha/255 grey levels (default {DEFAULTS.alpha:g})")
    shown = "none" if default_cap is None else f"{default_cap:g}"
    g.add_argument("--max-distortion", type=cap, default=default_cap,
                   help=f"distortion cap; 0 or none = no cap (default {shown})")
    g.add_argument("--max-iter", type=natural_int, default=DEFAULTS.max_iter,
                   help=f"steps before giving up (default {DEFAULTS.max_iter})")


def settings_from(args: argparse.Namespace, **fixed: object) -> RelabelSettings:
    """The RelabelSettings of parsed options (those a command has); range errors name the option."""
    values = {name: getattr(args, name) for name in RelabelSettings.names() if getattr(args, name, None) is not None}
    values["max_distortion"] = args.max_distortion
    values.update(fixed)
    try:
        return RelabelSettings(**values)
    except ArgumentError as e:
        raise ArgumentError(f"{_option(e)}{e}") from None


def _option(e: ArgumentError) -> str:
    for name in RelabelSettings.names():
        if name in str(e):
            return f"--{name.replace('_', '-')}: "
    return ""
