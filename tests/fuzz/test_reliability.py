"""The reliability suite of issue 14: hostile inputs and faults, each classified, none may abort, hang or leak.

Every probe class (CLI arguments, model files, images, stores, output paths,
the environment; Ctrl-C is in test_interrupts) is a list of `caffe-relabel`
runs. They run in child processes (tests.fuzz.reliability_child) under a
memory limit (RLIMIT_AS) and a time limit per case, several cases per child
to spare the imports; a child that dies or stalls is blamed on its current
case and a new one goes on with the next. Each case ends as one of:
success, clean (a documented exit code), traceback, oom (MemoryError or a
SIGKILL), abort (any other signal), hang, or exit N (an undocumented code).
Only the first two are allowed. The counts are printed at the end of the run.

FUZZ_EXAMPLES (default 60) sets how many mutated files each class tries.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from tests.fuzz.conftest import COUNTS, EXAMPLES
from tests.images.test_decode import _png16
from tests.fuzz.mutate import mutate_bytes, mutate_caffemodel, mutate_prototxt

ROOT = Path(__file__).resolve().parents[2]
# Every case's process: well below this machine's memory, above what torch and Caffe take to load.
MEMORY = 6 * 2**30
CASE_TIMEOUT = 60.0  # generous: the slowest clean case (a model conversion) takes about 10 s
ALLOWED = {"success", "clean"}
EDGES = ["-1", "0", "1e308", "nan", "x", "inf", "2147483648", "-100", "1e-320", ""]
if EXAMPLES <= 60:  # the default run: the values that found bugs first
    EDGES = EDGES[:5]
# Fast settings first: a fuzzed option given after them takes their place.
FAST = ["-q", "--max-iter", "2"]


def run_cases(cases: list[dict], tmp: Path) -> Counter:
    """Run ``cases`` in children; the outcome of each, counted. Failures are kept in ``run_cases.failures``,
    every outcome (with its exit code and stderr's end) in ``run_cases.outcomes``."""
    outcomes: dict[str, dict] = {}
    remaining = list(cases)
    while remaining:
        (tmp / "cases.json").write_text(json.dumps(remaining))
        results = tmp / "results.jsonl"
        results.write_text("")
        env = dict(os.environ, GLOG_minloglevel="2")
        child = subprocess.Popen([sys.executable, "-m", "tests.fuzz.reliability_child", str(tmp / "cases.json"),
                                  str(results), str(MEMORY), str(CASE_TIMEOUT)], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        current, since = None, time.monotonic()
        while True:
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            started = None
            for line in results.read_text().splitlines():
                record = json.loads(line)
                if "start" in record:
                    started = record["start"]
                else:
                    outcomes[record["id"]] = record
                    started = None
            if started != current:
                current, since = started, time.monotonic()
            if child.poll() is not None:
                break
            if current is not None and time.monotonic() - since > CASE_TIMEOUT + 60:
                # Past the child's own alarm: stuck where SIGALRM cannot reach (C code, a blocked signal).
                child.kill()
                child.wait()
                outcomes[current] = {"id": current, "outcome": "hang", "detail": "killed by the parent"}
                break
        stderr = child.stderr.read()
        child.stderr.close()
        if current is not None and current not in outcomes:
            rc = child.returncode
            kind = "oom" if rc == -signal.SIGKILL else "abort" if rc < 0 else f"exit {rc}"
            outcomes[current] = {"id": current, "outcome": kind, "detail": stderr[-1500:]}
        remaining = [c for c in remaining if c["id"] not in outcomes]
    counts = Counter(o["outcome"] for o in outcomes.values())
    run_cases.failures = {o["id"]: o for o in outcomes.values() if o["outcome"] not in ALLOWED}
    run_cases.outcomes = outcomes
    return counts


def check(name: str, cases: list[dict], tmp: Path) -> None:
    counts = run_cases(cases, tmp)
    COUNTS[f"reliability {name}: inputs"] += len(cases)
    for outcome, n in counts.items():
        COUNTS[f"reliability {name}: {outcome}"] += n
    failures = run_cases.failures
    assert not failures, "\n\n".join(f"{k} [{v['outcome']}]: {v.get('detail', '')}" for k, v in list(failures.items())[:5])


def _cases(kind: str, argvs: list[list[str]], **extra) -> list[dict]:
    return [dict({"id": f"{kind}-{i}: {' '.join(a)[:200]}", "argv": a}, **extra) for i, a in enumerate(argvs)]


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits_data):
    import skimage.io
    from PIL import Image

    d = tmp_path_factory.mktemp("reliability")
    skimage.io.imsave(d / "digit.png", digits_data["images"][0], check_contrast=False)
    Image.new("CMYK", (32, 32), (0, 0, 0, 255)).save(d / "cmyk.jpg")
    pages = [Image.new("L", (16, 16), v) for v in (0, 128, 255)]
    pages[0].save(d / "pages.tif", save_all=True, append_images=pages[1:])
    _png16(d / "rgb16.png", np.full((16, 16, 3), 40000, np.uint16))
    Image.new("L", (12000, 12000), 128).save(d / "huge.png")  # 144 Mpx in a small file
    Image.new("L", (16, 16), 0).save(d / "frames.gif", save_all=True,
                                      append_images=[Image.new("L", (16, 16), v) for v in range(1, 50)])
    os.mkfifo(d / "fifo")
    (d / "zero").symlink_to("/dev/zero")
    (d / "empty").write_bytes(b"")
    (d / "dir").mkdir()
    (d / "afile").write_text("x")
    (d / "text.prototxt").write_text("layer { name: ")
    return d


SPECIAL = ["fifo", "zero", "empty", "dir", "afile", "missing"]


def test_cli_option_values(files, tmp_path):
    """Every numeric option of every command with edge values: a usage error or a run, never more."""
    out = str(tmp_path / "out")
    digit = str(files / "digit.png")
    commands = {
        ("classify", digit, "-m", "digits"): ["--top"],
        ("relabel", digit, "-m", "digits", "-t", "3", *FAST): ["--alpha", "--max-distortion", "--max-iter",
                                                             "--confidence", "-t", "--resize"],
        ("experiment", "examples", "--n", "2", "--out", out, *FAST): ["--n", "--batch-size", "--seed", "--alpha",
                                                                      "--max-distortion", "--confidence"],
        ("experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--out", out, *FAST):
            ["--per-class", "--targets-per-source", "--shards", "--shard", "--targets", "--batch-size"],
        ("experiment", "synthesis", "--n-targets", "1", "--out", out, *FAST): ["--sigma", "--n-targets"],
        ("experiment", "svm", "--sets", "1", "--n-train", "2", "--n-test", "2", "--out", out, *FAST):
            ["--sets", "--n-train", "--n-test"],
        ("experiment", "limitations", "--n", "2", "--out", out, *FAST): ["--shift", "--n"],
    }
    argvs = [list(base) + [option, value] for base, options in commands.items() for option in options for value in EDGES]
    check("cli options", _cases("option", argvs), tmp_path)


def test_hostile_model_files(files, tmp_path):
    """Special files and mutated prototxts and caffemodels as --prototxt / --weights, on both backends."""
    from caffe_relabel.backends import pycaffe_available

    rng = random.Random(f"models-{EXAMPLES}")
    digit = str(files / "digit.png")
    proto, weights = testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS
    backends = ["engine"] + (["pycaffe"] if pycaffe_available() else [])
    pairs = [(str(files / s), str(weights)) for s in SPECIAL] + [(str(proto), str(files / s)) for s in SPECIAL]
    for i in range(EXAMPLES):
        p, w = tmp_path / f"m{i}.prototxt", tmp_path / f"m{i}.caffemodel"
        if i % 2:
            p.write_bytes(mutate_prototxt(rng, proto.read_bytes()))
            w = weights
        else:
            w.write_bytes(mutate_caffemodel(rng, weights.read_bytes()))
            p = proto
        pairs.append((str(p), str(w)))
    argvs = [["classify", digit, "--prototxt", p, "--weights", w, "--mean", "128", "--channel-order", "GREY",
              "--resize", "0", "--backend", backends[i % len(backends)]] for i, (p, w) in enumerate(pairs)]
    check("model files", _cases("model", argvs), tmp_path)


def test_hostile_images(files, tmp_path):
    """Special files, colour spaces, pages, a 144 Mpx image and mutated PNGs as the image to classify and relabel."""
    rng = random.Random(f"images-{EXAMPLES}")
    names = SPECIAL + ["cmyk.jpg", "pages.tif", "rgb16.png", "huge.png", "frames.gif", "text.prototxt"]
    images = [str(files / n) for n in names]
    png = (files / "digit.png").read_bytes()
    for i in range(EXAMPLES):
        (tmp_path / f"i{i}.png").write_bytes(mutate_bytes(rng, png))
        images.append(str(tmp_path / f"i{i}.png"))
    argvs = [["classify", im, "-m", "digits"] if i % 2 else ["relabel", im, "-m", "digits", "-t", "3", *FAST]
             for i, im in enumerate(images)]
    check("images", _cases("image", argvs), tmp_path)


def test_hostile_stores(files, tmp_path):
    """Special files and damaged stores to summarise, merge and resume."""
    from caffe_relabel.cli import main

    store = tmp_path / "good.sqlite"
    assert main(["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--store", str(store), *FAST]) == 0
    good = store.read_bytes()
    rng = random.Random(f"stores-{EXAMPLES}")
    paths = [str(files / s) for s in SPECIAL] + [str(files / "afile" / "under.sqlite")]
    for i in range(EXAMPLES):
        (tmp_path / f"s{i}.sqlite").write_bytes(mutate_bytes(rng, good))
        paths.append(str(tmp_path / f"s{i}.sqlite"))
    argvs = []
    for i, p in enumerate(paths):
        argvs.append([["experiment", "summary", p], ["experiment", "merge", str(tmp_path / f"merged{i}.sqlite"), p],
                      ["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--store", p, *FAST]][i % 3])
    check("stores", _cases("store", argvs), tmp_path)


def test_output_path_faults(files, tmp_path):
    """Outputs under a file, on a FIFO, in /proc, or on a full disk (a file-size limit): a clean error naming it."""
    digit = str(files / "digit.png")
    places = [str(files / "afile" / "out"), str(files / "fifo"), "/proc/caffe-relabel-out", str(files / "afile")]
    commands = [
        lambda p: ["relabel", digit, "-m", "digits", "-t", "3", "-o", p + ".png" if "afile/" in p else p, *FAST],
        lambda p: ["experiment", "examples", "--n", "2", "--out", p, *FAST],
        lambda p: ["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--out", p, *FAST],
        lambda p: ["experiment", "synthesis", "--n-targets", "1", "--out", p, *FAST],
        lambda p: ["experiment", "merge", p + "/merged.sqlite", str(files / "empty")],
    ]
    cases = _cases("path", [c(p) for c in commands for p in places])
    for fsize in (0, 100, 5000, 50000):
        out = tmp_path / f"full{fsize}"
        cases += _cases(f"full disk {fsize}", [c(str(out)) for c in commands] + [
            ["relabel", digit, "-m", "digits", "-t", "3", "-o", str(out) + ".png", *FAST]]
            # A quick report takes seconds: the default run tries it on one size.
            + ([["report", "--quick", "-m", "digits", "--out", str(out), "-q"]] if EXAMPLES > 60 or fsize == 5000 else []),
            fsize=fsize)
    check("output paths", cases, tmp_path)
    leftovers = [f for f in tmp_path.rglob("*") if f.is_file() and (".part" in f.name or f.name.startswith("."))]
    assert not leftovers, leftovers


def test_environment_faults(files, tmp_path):
    """CAFFE_RELABEL_HOME, the net memory limit and TMPDIR set to what cannot work."""
    digit = str(files / "digit.png")
    homes = [str(files / s) for s in ("afile", "fifo", "zero", "empty")] + ["/proc/caffe-relabel-home", "/dev/null", ""]
    commands = [["models", "list"], ["models", "verify"], ["classify", digit, "-m", "digits"],
                ["models", "fetch", "digits_mlp", "--url", "http://127.0.0.1:9/x"]]
    cases = _cases("home", [c for c in commands for _ in homes], env=None)
    for case, home in zip(cases, [h for _ in commands for h in homes]):
        case["env"] = {"CAFFE_RELABEL_HOME": home}
    for value in ["0", "-1", "x", "nan", "1", "1000", "1e400", ""]:
        cases += _cases(f"max bytes {value}", [["classify", digit, "-m", "digits"],
                                               ["relabel", digit, "-m", "digits", "-t", "3", *FAST]],
                        env={"CAFFE_RELABEL_MAX_NET_BYTES": value})
    cases += _cases("dask", [["experiment", "sweep", "--dask", address, "--per-class", "1", *FAST]
                             for address in ("tcp://127.0.0.1:1", "garbage://x", "127.0.0.1:99999")])
    for tmpdir in [str(files / "afile"), str(files / "missing"), "/proc"]:
        cases += _cases(f"tmpdir {tmpdir}", [["classify", digit, "-m", "digits", "--backend", "pycaffe"]],
                        env={"TMPDIR": tmpdir})
    if EXAMPLES > 60:  # converting EfficientNet-Lite0 takes seconds each: the long run only
        for home in homes:
            cases += _cases(f"convert {home!r}", [["models", "convert"]], env={"CAFFE_RELABEL_HOME": home})
    for fsize in (0, 1000):
        cases += _cases(f"convert full {fsize}", [["models", "convert"]],
                        env={"CAFFE_RELABEL_HOME": str(tmp_path / f"home{fsize}")}, fsize=fsize)
    check("environment", cases, tmp_path)


def _cut_converted_home(home: Path) -> Path:
    """A cache holding an efficientnet_lite0 whose file no longer matches the record made with it."""
    from caffe_relabel.files.checksums import write_record

    weights = home / "models" / "efficientnet_lite0.caffemodel"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"\x01" * 5000)
    write_record(weights)
    with open(weights, "r+b") as f:
        f.truncate(1000)
    return home


def test_third_pass_reproductions(files, tmp_path):
    """Issue 24's reproductions, each with the exit code it must end in (2 usage, 3 input), cleanly."""
    from caffe_relabel.backends import pycaffe_available
    from caffe_relabel.models import zoo
    from caffe_relabel.netdef.netcheck import MAX_PYCAFFE_LAYERS
    from tests.backends.deep_net import deep_prototxt, deep_weights
    from tests.fuzz.api_cases import CALLS

    digit = str(files / "digit.png")
    own = ["--prototxt", str(testmodels.DIGITS_PROTOTXT), "--weights", str(testmodels.DIGITS_WEIGHTS),
           "--channel-order", "GREY", "--resize", "0"]
    relabel = ["relabel", digit, "-t", "3", *FAST]
    expected: list[tuple[dict, int]] = []

    def add(kind: str, argvs: list[list[str]], code: int, **extra) -> None:
        expected.extend((case, code) for case in _cases(kind, argvs, **extra))

    add("target", [["relabel", digit, "--target=\u00b2", "-m", "digits", "-q"],
                   ["relabel", digit, "--target=--1", "-m", "digits", "-q"]], 2)
    add("transform", [relabel + own + transform for transform in (
        ["--mean", "0", "--raw-scale=1e-320"], ["--mean", "0", "--input-scale=1e-320"], ["--mean", "0", "--raw-scale=1e308"],
        ["--mean", "0", "--input-scale=1e308"], ["--mean", "1e300"], ["--mean", "1e9"])]
        + [["classify", digit, *own, "--mean", "1e300"]], 2)
    add("output name", [relabel + ["-m", "digits", "-o", ""],
                        relabel + ["-m", "digits", "-o", str(tmp_path / "newdir.png") + "/"]], 2)
    expected.extend(({"id": f"api-{i}: {name}", "call": f"tests.fuzz.api_cases:{name}"}, 2)
                    for i, name in enumerate(CALLS))
    # A batch the backend would refuse (245 MB of digits at the default source set's 3,240 pairs).
    add("sweep batch", [["experiment", "sweep", "--batch-size", "100000", "--out", str(tmp_path / "sweep"), *FAST]], 3,
        env={"CAFFE_RELABEL_MAX_NET_BYTES": "20000000"})
    if zoo.find_weights(zoo.get("efficientnet_lite0")) is not None and pycaffe_available():
        add("sweep batch", [["experiment", "sweep", "-m", "efficientnet_lite0", "--batch-size", "1784", "--backend",
                             "pycaffe", "--out", str(tmp_path / "sweep-lite0"), *FAST]], 3)
    weights = deep_weights(tmp_path / "deep.caffemodel")
    deep = ["--mean", "0", "--channel-order", "GREY", "--resize", "0"]
    over = deep_prototxt(tmp_path / "over.prototxt", MAX_PYCAFFE_LAYERS + 1)
    if pycaffe_available():
        add("layers", [["classify", digit, "--prototxt", str(over), "--weights", str(weights), *deep,
                        "--backend", "pycaffe"]], 3)
        big = deep_prototxt(tmp_path / "big.prototxt", 318_000, padding=90)  # the 50 MB, 318k-layer file
        add("layers", [["classify", digit, "--prototxt", str(big), "--weights", str(weights), *deep,
                        "--backend", "pycaffe"]], 3)
    add("layers engine", [["classify", digit, "--prototxt", str(over), "--weights", str(weights), *deep,
                           "--backend", "engine"]], 0)
    home = str(_cut_converted_home(tmp_path / "home"))
    add("cut model", [["models", "fetch", "efficientnet_lite0", "-q"], ["models", "verify", "efficientnet_lite0"]], 3,
        env={"CAFFE_RELABEL_HOME": home})
    for fsize in (0, 100):  # the engine: pycaffe's temporary prototxt would meet the full disk first
        add(f"full disk {fsize}", [relabel + ["-m", "digits", "--backend", "engine",
                                               "-o", str(tmp_path / f"full{fsize}.png")]], 3, fsize=fsize)

    check("issue 24", [case for case, _ in expected], tmp_path)
    codes = {k: o.get("rc") for k, o in run_cases.outcomes.items()}
    wrong = {case["id"]: (codes[case["id"]], code) for case, code in expected if codes[case["id"]] != code}
    assert not wrong, f"(exit code, expected): {wrong}"
    assert not (tmp_path / "newdir.png").exists() and not (tmp_path / "sweep").exists()
    assert not list(tmp_path.glob("full*.png")) and not (tmp_path / "sweep-lite0").exists()
