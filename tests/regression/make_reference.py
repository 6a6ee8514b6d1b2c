"""Write tests/regression/reference.json with real pycaffe.

    .venv/bin/python -m tests.regression.make_reference

Run it only when the algorithm changes on purpose; the regression test then
checks every backend against these numbers.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from caffe_relabel.backends.pycaffe import import_caffe
from tests.regression.cases import GROUPS, run

REFERENCE = Path(__file__).with_name("reference.json")


def main() -> None:
    import_caffe()  # fail early without pycaffe

    data = {
        "made_with": {"backend": "pycaffe", "numpy": np.__version__, "machine": platform.machine()},
        "groups": {g.name: run(g, "pycaffe") for g in GROUPS},
    }
    REFERENCE.write_text(json.dumps(data, indent=1) + "\n")
    for name, cases in data["groups"].items():
        its = [c["iterations"] for c in cases]
        dist = [c["distortion"] for c in cases]
        print(f"{name}: {len(cases)} cases, success {sum(c['success'] for c in cases)}, "
              f"iterations {np.mean(its):.1f} mean, distortion {np.mean(dist):.5f} mean")


if __name__ == "__main__":
    main()
