"""``python -m caffe_relabel.models.convert MODEL [--out DIR]``: convert a pretrained model into a Caffe model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.files.paths import cache_dir
from caffe_relabel.models.convert import CONVERTERS


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caffe_relabel.models.convert", description=__doc__)
    parser.add_argument("model", choices=sorted(CONVERTERS), help="the model to convert")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: $CAFFE_RELABEL_HOME/models)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else cache_dir("models")
    convert, _ = CONVERTERS[args.model]
    start = time.perf_counter()
    try:
        prototxt, caffemodel = convert(out)
    except (CaffeRelabelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{prototxt}\n{caffemodel}\n({args.model} converted in {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
