"""Run mutated models through the pycaffe backend, one process for a batch (see test_fuzz_models).

Usage: python -m tests.fuzz.pycaffe_child CASE_DIR. Each case is NAME.prototxt
plus an optional NAME.caffemodel. Before each case its name goes to
CASE_DIR/progress, so that a Caffe abort (which kills this process) names its
input. Exit 0: every case loaded (and ran) or raised a caffe_relabel error;
the counts are printed as JSON. Exit 3: another exception, printed.
"""

from __future__ import annotations

import json
import resource
import sys
import traceback
from pathlib import Path

import numpy as np

from caffe_relabel.backends.pycaffe import PycaffeClassifier
from caffe_relabel.errors import CaffeRelabelError


# Address space: Caffe plus nets under the fuzz run's 1 GiB limit fit; a case past the check
# ends in MemoryError (a failure here), not in the kernel's out-of-memory killer.
ADDRESS_SPACE = 6 * 2**30


def main(case_dir: Path) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    counts = {"loaded": 0, "refused": 0}
    progress = case_dir / "progress"
    for proto in sorted(case_dir.glob("*.prototxt")):
        progress.write_text(proto.stem)
        weights = proto.with_suffix(".caffemodel")
        try:
            clf = PycaffeClassifier(proto, weights if weights.exists() else None)
            x = np.zeros((2,) + clf.input_shape, np.float32)
            clf.loss_and_gradient(x, [0, clf.num_classes - 1])
            counts["loaded"] += 1
        except CaffeRelabelError:
            counts["refused"] += 1
        except Exception:
            print(f"case {proto.stem}:", file=sys.stderr)
            traceback.print_exc()
            return 3
    progress.write_text("done")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
