"""One device parser for every backend and the command line."""

from __future__ import annotations

import pytest

from caffe_relabel.devices import parse_device
from caffe_relabel.errors import ArgumentError


@pytest.mark.parametrize("text,parsed", [("cpu", ("cpu", None)), (" CPU ", ("cpu", None)), ("gpu", ("gpu", None)),
                                         ("cuda", ("gpu", None)), ("gpu:1", ("gpu", 1)), ("cuda:0", ("gpu", 0))])
def test_device_names(text, parsed):
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["tpu", "tpu:0", "cpu:0", "gpu:", "gpu:x", "cuda:-1", "", "gpu:\u00b2", "cuda:\u0663"])
def test_other_devices_are_argument_errors(text):
    with pytest.raises(ArgumentError, match="expected device 'cpu', 'gpu:N' or 'cuda:N'"):
        parse_device(text)


def test_every_parser_is_this_one():
    """The backends and the CLI take their device names from parse_device, not from a copy."""
    import caffe_relabel.backends.pycaffe as pycaffe
    import caffe_relabel.cli.options as options

    assert pycaffe.parse_device is parse_device and options.parse_device is parse_device
    torch = pytest.importorskip("torch")
    from caffe_relabel.engine.device import resolve_device

    assert resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(ArgumentError, match="expected device"):
        resolve_device("tpu")
