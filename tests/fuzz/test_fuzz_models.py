"""Fuzzing both backends with mutated prototxts and caffemodels of a real model.

The engine runs in-process: only caffe_relabel errors may escape building,
forward or gradient. pycaffe runs in a child process per batch, since a Caffe
CHECK or LOG(FATAL) kills its process: the child must exit normally, having
loaded or refused (with our errors) every input.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_relabel.models import testmodels
from caffe_relabel.backends import pycaffe_available
from caffe_relabel.errors import CaffeRelabelError
from tests.fuzz.conftest import COUNTS, EXAMPLES
from tests.fuzz.mutate import mutate_caffemodel, mutate_prototxt

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROTOTXT = testmodels.DIGITS_PROTOTXT.read_bytes()
CAFFEMODEL = testmodels.DIGITS_WEIGHTS.read_bytes()
ROOT = Path(__file__).resolve().parents[2]


def _engine_case(tmp: Path, proto: bytes, weights: bytes) -> None:
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier

    (tmp / "n.prototxt").write_bytes(proto)
    (tmp / "m.caffemodel").write_bytes(weights)
    try:
        clf = EngineClassifier(tmp / "n.prototxt", tmp / "m.caffemodel")
        x = np.zeros((2,) + clf.input_shape, np.float32)
        clf.loss_and_gradient(x, [0, clf.num_classes - 1])
    except CaffeRelabelError:
        pass


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_engine_with_mutated_prototxt(tmp_path, rng):
    COUNTS["engine: mutated prototxt"] += 1
    _engine_case(tmp_path, mutate_prototxt(rng, PROTOTXT), CAFFEMODEL)


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_engine_with_mutated_caffemodel(tmp_path, rng):
    COUNTS["engine: mutated caffemodel"] += 1
    _engine_case(tmp_path, PROTOTXT, mutate_caffemodel(rng, CAFFEMODEL))


@pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built")
@pytest.mark.parametrize("what", ["prototxt", "caffemodel"])
def test_pycaffe_survives_mutated_models(tmp_path, what):
    rng = random.Random(f"pycaffe-{what}-{EXAMPLES}")
    batch = 250  # cases per child: Caffe's import costs about a second
    done = 0
    while done < EXAMPLES:
        cases = tmp_path / f"batch{done}"
        cases.mkdir()
        for i in range(done, min(done + batch, EXAMPLES)):
            if what == "prototxt":
                (cases / f"{i:06d}.prototxt").write_bytes(mutate_prototxt(rng, PROTOTXT))
            else:
                (cases / f"{i:06d}.prototxt").write_bytes(PROTOTXT)
                (cases / f"{i:06d}.caffemodel").write_bytes(mutate_caffemodel(rng, CAFFEMODEL))
        # glibc's heap checks make a corrupting case fail at once, not some cases later.
        env = dict(os.environ, GLOG_minloglevel="2", MALLOC_CHECK_="3", MALLOC_PERTURB_="165")
        child = subprocess.run([sys.executable, "-m", "tests.fuzz.pycaffe_child", str(cases)], cwd=ROOT,
                               capture_output=True, text=True, env=env, timeout=600)
        if child.returncode != 0:
            culprit = (cases / "progress").read_text()
            keep = ROOT / "tests" / "fuzz" / "failures"
            keep.mkdir(exist_ok=True)
            for f in cases.glob(f"{culprit}.*"):
                shutil.copy(f, keep / f"{what}-{f.name}")
            pytest.fail(f"pycaffe child exited {child.returncode} on case {culprit} (copied to {keep}):\n"
                        f"{child.stderr[-3000:]}")
        counts = json.loads(child.stdout.strip().splitlines()[-1])
        assert sum(counts.values()) == len(list(cases.glob("*.prototxt")))
        COUNTS[f"pycaffe: mutated {what}"] += sum(counts.values())
        COUNTS[f"pycaffe: mutated {what}, loaded"] += counts["loaded"]
        done += batch


# engine: CUDNN in a current and in V1 layers (checked after the upgrade): a CPU-only Caffe aborts on each.
CUDNN_CASES = {
    "current_relu": ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 '
                     'dim: 8 } } }\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { engine: CUDNN } }'),
    **{f"v1_{kind.lower()}": ('input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
                             f'layers {{ name: "l" type: {kind} bottom: "data" top: "l" {param} {{ {extra}engine: CUDNN }} }}')
       for kind, param, extra in (("CONVOLUTION", "convolution_param", "num_output: 2 kernel_size: 3 "),
                                  ("POOLING", "pooling_param", "kernel_size: 2 "), ("RELU", "relu_param", ""),
                                  ("SIGMOID", "sigmoid_param", ""), ("TANH", "tanh_param", ""),
                                  ("SOFTMAX", "softmax_param", ""))},
}


@pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built")
def test_pycaffe_refuses_cudnn_engines_in_v1_and_current_layers(tmp_path):
    for name, text in CUDNN_CASES.items():
        (tmp_path / f"{name}.prototxt").write_text(text)
    child = subprocess.run([sys.executable, "-m", "tests.fuzz.pycaffe_child", str(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, env=dict(os.environ, GLOG_minloglevel="2"), timeout=300)
    assert child.returncode == 0, f"case {(tmp_path / 'progress').read_text()}: {child.stderr[-3000:]}"
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {"loaded": 0, "refused": len(CUDNN_CASES)}


@pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built")
def test_pycaffe_refuses_repeated_or_misplaced_weight_layers(tmp_path):
    # Caffe copies every caffemodel layer whose name is in the net, duplicates included, and CHECKs
    # its blob count: a second, empty 'conv1' (found by make fuzz) or blobs on 'relu2' abort it.
    from caffe_relabel.netdef.proto import NetParameter

    def with_extra(name: str, blobs: int) -> bytes:
        net = NetParameter()
        net.ParseFromString(CAFFEMODEL)
        extra = net.layer.add(name=name, type="ReLU")
        for _ in range(blobs):
            extra.blobs.add().shape.dim.append(1)
        return net.SerializeToString()

    for case, (name, blobs) in {"empty_conv1_again": ("conv1", 0), "blobs_on_relu2": ("relu2", 1)}.items():
        (tmp_path / f"{case}.prototxt").write_bytes(PROTOTXT)
        (tmp_path / f"{case}.caffemodel").write_bytes(with_extra(name, blobs))
    child = subprocess.run([sys.executable, "-m", "tests.fuzz.pycaffe_child", str(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, env=dict(os.environ, GLOG_minloglevel="2"), timeout=300)
    assert child.returncode == 0, f"case {(tmp_path / 'progress').read_text()}: {child.stderr[-3000:]}"
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {"loaded": 0, "refused": 2}
