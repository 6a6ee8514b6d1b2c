"""Run the regression cases with pycaffe and print them with the machine they ran on, as JSON.

    OPENBLAS_CORETYPE=Haswell python -m tests.regression.kernel_child

A child process, because OpenBLAS reads OPENBLAS_CORETYPE only when it loads.
"""

from __future__ import annotations

import json

from tests.regression.cases import GROUPS, run
from tests.regression.machine import describe


def main() -> None:
    print(json.dumps({"made_with": describe(), "groups": {g.name: run(g, "pycaffe") for g in GROUPS}}))


if __name__ == "__main__":
    main()
