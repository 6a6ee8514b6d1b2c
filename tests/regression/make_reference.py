"""Write tests/regression/reference.json with real pycaffe.

    .venv/bin/python -m tests.regression.make_reference

Run it only when the algorithm changes on purpose; the regression test then
checks every backend against these numbers. The numbers are made with
OpenBLAS's plain SSE3 kernel (``OPENBLAS_CORETYPE=Prescott``), which every
x86-64 CPU runs, so the reference does not depend on the machine that made
it: this script re-runs itself with that setting when it is not set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("reference.json")
KERNEL = "Prescott"


def main() -> None:
    if os.environ.get("OPENBLAS_CORETYPE") != KERNEL:
        env = dict(os.environ, OPENBLAS_CORETYPE=KERNEL)
        sys.exit(subprocess.run([sys.executable, "-m", "tests.regression.make_reference"], env=env).returncode)
    from tests.regression.cases import GROUPS, run
    from tests.regression.machine import describe

    made_with = {"backend": "pycaffe", **describe()}
    if (made_with["openblas"]["corename"] or "").lower() != KERNEL.lower():
        sys.exit(f"OpenBLAS runs kernel {made_with['openblas']['corename']!r}, not {KERNEL}: "
                 "is pycaffe linked against a DYNAMIC_ARCH OpenBLAS?")
    data = {"made_with": made_with, "groups": {g.name: run(g, "pycaffe") for g in GROUPS}}
    REFERENCE.write_text(json.dumps(data, indent=1) + "\n")
    for name, cases in data["groups"].items():
        its = [c["iterations"] for c in cases]
        dist = [c["distortion"] for c in cases]
        print(f"{name}: {len(cases)} cases, success {sum(c['success'] for c in cases)}, "
              f"iterations {np.mean(its):.1f} mean, distortion {np.mean(dist):.5f} mean")


if __name__ == "__main__":
    main()
