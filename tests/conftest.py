"""Shared fixtures: the committed digits model and the random-weight zoo nets."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from caffe_relabel.backends import pycaffe_available


def pytest_configure(config) -> None:
    # The Ctrl-C tests need SIGINT to interrupt this process and the children it starts.
    # A launcher that ignores it (nohup, a background job of a non-interactive shell) is
    # inherited: then Python installs no KeyboardInterrupt handler and those tests would
    # fail for the launcher's sake. A handled signal is reset to default across exec.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


requires_pycaffe = pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built (run `make setup`)")


@pytest.fixture(scope="module", params=["pycaffe", "engine"])
def backend(request) -> str:
    """Each backend in turn (a test module's tests run on both; a missing one is skipped)."""
    if request.param == "pycaffe" and not pycaffe_available():
        pytest.skip("pycaffe is not built (run `make setup`)")
    if request.param == "engine":
        pytest.importorskip("torch")
    return request.param


@pytest.fixture(scope="session")
def digits_data() -> dict:
    data = np.load(testmodels.DIGITS_TEST)
    return {"images": data["images"], "labels": data["labels"]}


@pytest.fixture(scope="session")
def digits_blobs(digits_data) -> np.ndarray:
    return digits_data["images"].astype(np.float32)[:, None] - testmodels.DIGITS_MEAN


@pytest.fixture(scope="session")
def digits_pycaffe():
    if not pycaffe_available():
        pytest.skip("pycaffe is not built (run `make setup`)")
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    return PycaffeClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)


@pytest.fixture
def http_server():
    from tests.http_server import LocalServer

    with LocalServer() as server:
        yield server


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """An empty CAFFE_RELABEL_HOME for the test."""
    home = tmp_path / "home"
    monkeypatch.setenv("CAFFE_RELABEL_HOME", str(home))
    return home
