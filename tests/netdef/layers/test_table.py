"""The layer table: each type once, the static check and the engine agree on the types, lookups name what is known."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

from caffe_relabel.errors import CaffeRelabelError, UnsupportedLayerError
from caffe_relabel.netdef.layers import BOTH, ENGINE, PYCAFFE, PYCAFFE_ONLY, TABLE, LayerCheck, LayerTable, Setup, register
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter


def _engine_builders() -> set[object]:
    """Every ``build_*`` function defined in the engine's layer family files (or a layer class's ``build`` there)."""
    package = importlib.import_module("caffe_relabel.engine.layers")
    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found.update(f for name, f in inspect.getmembers(module, callable) if name.startswith("build_")
                     and (f.__self__ if inspect.ismethod(f) else f).__module__ == module.__name__)
    return found


def test_every_engine_entry_has_a_builder_and_every_builder_an_entry() -> None:
    pytest.importorskip("torch")
    resolved = {entry.name: entry.build_function() for entry in TABLE.entries() if ENGINE in entry.backends}
    assert all(callable(f) for f in resolved.values())
    # Types that share a rule (the neurons) still have one builder each.
    assert len(set(resolved.values())) == len(resolved)
    assert set(resolved.values()) == _engine_builders()


def test_the_engine_and_the_static_check_know_the_same_types() -> None:
    pytest.importorskip("torch")
    from caffe_relabel.engine import supported_types

    assert supported_types() == TABLE.names(ENGINE) == TABLE.names()


def test_static_check_and_weights_check_do_not_import_torch() -> None:
    # The pycaffe backend and the CLI's checks must work without the engine extra.
    code = "import sys, caffe_relabel.netdef.netcheck, caffe_relabel.netdef.weights, caffe_relabel.netdef.layers; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_type_is_registered_once() -> None:
    with pytest.raises(CaffeRelabelError, match="'ReLU' is already registered by caffe_relabel.netdef.layers.neuron._neuron"):
        register("ReLU", builder="neuron:build_relu")(lambda c: Setup(()))
    assert TABLE.lookup("ReLU", "here").builder == "neuron:build_relu"


def _rule(c: LayerCheck) -> Setup:
    return Setup((c.bottoms[0],))


def test_a_builder_is_named_exactly_when_the_engine_runs_the_type() -> None:
    table = LayerTable()
    with pytest.raises(CaffeRelabelError, match="'A'.*builder exactly when the engine runs it"):
        table.register("A", builder=None, backends=BOTH)(_rule)
    with pytest.raises(CaffeRelabelError, match="'B'.*builder exactly when the engine runs it"):
        table.register("B", builder="neuron:build_relu", backends=PYCAFFE_ONLY)(_rule)
    assert table.names() == []


def test_a_miss_lists_the_known_types() -> None:
    table = LayerTable()
    table.register("Only", builder=None, backends=PYCAFFE_ONLY)(_rule)
    table.register("Both", builder="neuron:build_relu")(_rule)
    with pytest.raises(UnsupportedLayerError, match="net: layer 'w': layer type 'Weird' is not supported; "
                                                    "supported types: Both, Only$"):
        table.lookup("Weird", "net: layer 'w'")
    assert table.names(ENGINE) == ["Both"] and table.names(PYCAFFE) == ["Both", "Only"]


def test_a_backend_refuses_a_type_it_does_not_run() -> None:
    table = LayerTable()
    table.register("Only", builder=None, backends=PYCAFFE_ONLY)(_rule)
    layers = [LayerParameter(name="x", type="Only")]
    table.require(layers, PYCAFFE, "net.prototxt")
    with pytest.raises(UnsupportedLayerError, match="net.prototxt: layer 'x': layer type 'Only' runs on the pycaffe "
                                                    "backend only, not on engine"):
        table.require(layers, ENGINE, "net.prototxt")
    with pytest.raises(UnsupportedLayerError, match="has no engine builder"):
        table.lookup("Only", "net").build_function()


def test_in_place_types_are_the_element_wise_ones_whose_caffe_backward_survives_it() -> None:
    # AbsVal, Log, BNLL and Clip read their bottom in backward; Power writes its bottom diff first.
    assert TABLE.in_place_names() == ["BatchNorm", "Bias", "Dropout", "ELU", "Exp", "PReLU", "ReLU", "Scale",
                                      "Sigmoid", "Softmax", "Swish", "TanH", "Threshold"]


def test_forward_only_types_are_those_caffe_cannot_differentiate() -> None:
    assert [e.name for e in TABLE.entries() if not e.backward] == ["ArgMax", "Threshold"]
