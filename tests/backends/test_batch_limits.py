"""Every backend checks each batch it is asked to run before it allocates, or Caffe sees it.

Caffe aborts the process (SIGABRT) on a blob over INT_MAX values, and either
backend would allocate whatever a batch asks for. Each case runs in a child
process with an address-space limit and a timeout, so that a regression ends
in a failed test, not in a machine out of memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import requires_pycaffe

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = [pytest.param("pycaffe", marks=requires_pycaffe), "engine"]
# Address space for the child: Caffe, torch and a 512 MiB input fit; a batch that got past the
# check would not (digits at 524288 samples needs about 190 GiB).
ADDRESS_SPACE = 6 * 2**30

CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import numpy as np
from caffe_relabel import load_model
from caffe_relabel.errors import NetTooLargeError
{setup}
try:
    {call}
except NetTooLargeError as e:
    print("refused:", e)
# The refusal left the classifier as it was: a small batch still runs.
print("then:", clf.forward(np.zeros((2,) + clf.input_shape, np.float32)).shape)
"""


def _child(setup: str, call: str, env: dict[str, str] | None = None) -> str:
    code = CHILD.format(limit=ADDRESS_SPACE, setup=setup, call=call)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, GLOG_minloglevel="2", **(env or {})))
    assert done.returncode == 0, f"the child exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("call", ["clf.forward(x)", "clf.loss_and_gradient(x, 0)"])
def test_a_huge_batch_is_refused(backend, call):
    # Issue 14's probe: this forward used to abort the process in Caffe's reshape.
    out = _child(f'clf = load_model("digits", backend="{backend}").classifier\n'
                 "x = np.zeros((524288, 1, 16, 16), np.float32)", call)
    assert "refused:" in out and "at a batch of 524288" in out, out
    assert "then: (2, 10)" in out, out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_blob_over_int_max_at_the_run_batch_is_refused(backend, tmp_path):
    # A wide 1x1 convolution: 2^24 values per sample, so 2^31 (one over Caffe's INT_MAX) at batch 128.
    # The memory limit is lifted so that the blob-size check alone must catch it.
    proto = tmp_path / "wide.prototxt"
    proto.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 128 '
                     'dim: 128 } } }\nlayer { name: "wide" type: "Convolution" bottom: "data" top: "wide" '
                     'convolution_param { num_output: 1024 kernel_size: 1 } }\n')
    out = _child(f'from caffe_relabel.backends import load_classifier\n'
                 f'clf = load_classifier({str(proto)!r}, None, backend="{backend}")\n'
                 "x = np.zeros((128, 4, 128, 128), np.float32)", "clf.forward(x)",
                 env={"CAFFE_RELABEL_MAX_NET_BYTES": str(2**50)})
    assert "refused:" in out and "'wide'" in out and "2147483647" in out and "at a batch of 128" in out, out
    assert "then: (2, 16777216)" in out, out
