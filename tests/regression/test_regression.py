"""Relabelling runs must reproduce the committed pycaffe reference.

Iterations and stop reasons exactly; distortion to 1e-6 (float32 round-off
in the blob stays near 1e-9, so 1e-6 only allows a differently rounded but
equal run); probabilities to 1e-5 absolute (float32 softmax outputs).
Regenerate with `python -m tests.regression.make_reference` when the
algorithm changes on purpose.
"""

from __future__ import annotations

import json

import pytest

from caffe_relabel.backends import BACKENDS
from tests.regression.cases import GROUPS, run
from tests.regression.make_reference import REFERENCE

REF = json.loads(REFERENCE.read_text())["groups"]


def _available(backend: str) -> bool:
    if backend == "pycaffe":
        from caffe_relabel.backends import pycaffe_available

        return pycaffe_available()
    try:
        import torch  # noqa: F401
        import caffe_relabel.backends.engine  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("group", GROUPS, ids=[g.name for g in GROUPS])
def test_matches_reference(group, backend):
    if not _available(backend):
        pytest.skip(f"backend {backend} is not available")
    got = run(group, backend)
    want = REF[group.name]
    assert [c["source"] for c in got] == [c["source"] for c in want]
    for g, w in zip(got, want):
        where = f"{group.name} {g['source']} -> {w['target']}"
        assert (g["iterations"], g["stop"], g["success"]) == (w["iterations"], w["stop"], w["success"]), where
        assert g["distortion"] == pytest.approx(w["distortion"], abs=1e-6), where
        assert g["final_label"] == w["final_label"] and g["uint8_label"] == w["uint8_label"], where
        assert [i for i, _ in g["top5"]] == [i for i, _ in w["top5"]], where
        for (_, pg), (_, pw) in zip(g["top5"], w["top5"]):
            assert pg == pytest.approx(pw, abs=1e-5), where
