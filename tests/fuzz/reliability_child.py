"""Run reliability cases (tests.fuzz.reliability) one after another in this process, each classified.

    python -m tests.fuzz.reliability_child CASES.json RESULTS.jsonl MEMORY_BYTES CASE_TIMEOUT

Each case is `caffe-relabel ARGV` (or, with "call", one hostile API call from
tests.fuzz.api_cases: a library error is then a clean exit with the CLI's code
for it) with its environment changes and an optional
file-size limit (a full disk: writes past it fail with EFBIG, as SIGXFSZ is
ignored). The case about to run is written to RESULTS first ("start"), so a
parent that sees this process die or stall knows which case did it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import re
import resource
import signal
import sys
import traceback
import warnings


class Hang(BaseException):
    """A case ran past its time (raised from SIGALRM; BaseException so no handler takes it for an error)."""


def _on_alarm(signum, frame):
    raise Hang()


# A Python warning as warnings.showwarning prints it: "path:line: SomeWarning: message".
_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ", re.MULTILINE)


def classify(rc, err: str) -> str:
    """success, clean (an exit code the CLI documents), or a failure: traceback, noise, oom, exit N.

    An exception Python ignored (in a destructor: "Exception ignored in ...") printed a traceback too;
    noise is a library's warning printed before (or instead of) the clean line.
    """
    if "MemoryError" in err:
        return "oom"
    if "Traceback (most recent call last)" in err or "Exception ignored in" in err:
        return "traceback"
    if _WARNING.search(err):
        return "noise"
    if rc == 0:
        return "success"
    if rc in (1, 2, 3, 4, 130):
        return "clean"
    return f"exit {rc}"


def run_case(case: dict, timeout: float) -> dict:
    from caffe_relabel.cli import main

    saved_env = {k: os.environ.get(k) for k in case.get("env", {})}
    saved_fsize = resource.getrlimit(resource.RLIMIT_FSIZE)
    out, err = io.StringIO(), io.StringIO()
    rc = None
    try:
        for k, v in case.get("env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if case.get("fsize") is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], saved_fsize[1]))
        signal.setitimer(signal.ITIMER_REAL, timeout)
        # catch_warnings: each case starts with the warning filters fresh, so a warning shown by an
        # earlier case in this process is shown (and classified) again, not deduplicated away.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            try:
                rc = _call(case["call"]) if "call" in case else main(case["argv"])
            except SystemExit as e:  # argparse's own exit
                rc = e.code
            gc.collect()  # destructors that fail print "Exception ignored" now, into err, not after the case
    except Hang:
        return {"id": case["id"], "outcome": "hang", "detail": err.getvalue()[-500:]}
    except MemoryError:
        return {"id": case["id"], "outcome": "oom", "detail": traceback.format_exc()[-1500:]}
    except BaseException:  # anything the CLI let through is a traceback the user would see
        return {"id": case["id"], "outcome": "traceback", "detail": traceback.format_exc()[-1500:]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_FSIZE, saved_fsize)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"id": case["id"], "outcome": classify(rc, err.getvalue()), "rc": rc, "detail": err.getvalue()[-500:]}


def _call(target: str) -> int:
    """Run ``module:function``; a library error is reported in one line and mapped as the CLI maps it."""
    import importlib

    from caffe_relabel.cli.exits import exit_code
    from caffe_relabel.errors import CaffeRelabelError

    module, name = target.split(":")
    try:
        getattr(importlib.import_module(module), name)()
    except CaffeRelabelError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return exit_code(e)
    return 0


def main() -> None:
    cases_path, results_path, memory, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cases = json.loads(open(cases_path).read())
    with open(results_path, "a") as results:
        for case in cases:
            results.write(json.dumps({"start": case["id"]}) + "\n")
            results.flush()
            results.write(json.dumps(run_case(case, timeout)) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
