"""The reference backend: real BVLC Caffe through pycaffe.

The net is built from the user's prototxt patched with ``force_backward:
true`` (so dL/dX reaches the data blob) in TEST phase. Caffe aborts the whole
process (CHECK, LOG(FATAL)) on a malformed definition or weights file, so
both are checked in Python first: the definition by
:func:`caffe_relabel.netdef.netcheck.check_net` (structure, Caffe's set-up checks,
sizes; data, file and ``Python`` layers refused), the weights blob by blob
by :func:`caffe_relabel.netdef.weights.check_weights` (the engine's check too).
Caffe's loader also silently keeps filler values for a layer missing from
the file: a typed error there.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from caffe_relabel.devices import parse_device
from caffe_relabel.errors import BackendUnavailableError, CaffeRelabelError, ModelFormatError, OutputError, UnsupportedLayerError
from caffe_relabel.netdef.layers import PYCAFFE, TABLE
from caffe_relabel.netdef.layers.head import classifier_head
from caffe_relabel.netdef.netcheck import NetShapes, check_layer_count, check_net
from caffe_relabel.netdef.prototxt import count_layers, force_backward
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import ConvolutionParameter
from caffe_relabel.netdef.proto.io import parse_net, read_text
from caffe_relabel.netdef.weights import check_loaded, check_weights
from caffe_relabel.backends.base import Classifier, LossGradient, softmax_cross_entropy_grad


def import_caffe() -> Any:
    """Import pycaffe quietly, or raise BackendUnavailableError saying how to get it."""
    # Caffe logs every layer's set-up through glog; keep only errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe  # type: ignore[import-not-found]
    except ImportError as e:
        raise BackendUnavailableError(
            f"pycaffe is not importable ({e}); run `make setup` to build it, "
            "or use the engine backend (backend='engine')"
        ) from None
    return caffe


@functools.lru_cache(maxsize=None)
def gpu_usable(index: int) -> bool:
    """Whether pycaffe can run on GPU ``index``.

    Asked in a child process: a CPU-only Caffe aborts the whole process
    (LOG(FATAL), not an exception) when told to use a GPU.
    """
    probe = f"import caffe; caffe.set_mode_gpu(); caffe.set_device({index}); caffe.Net"
    env = dict(os.environ, GLOG_minloglevel="3")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120)
    return done.returncode == 0


# Every layer parameter's Engine enum numbers CUDNN alike.
_CUDNN = ConvolutionParameter.CUDNN


class PycaffeClassifier(Classifier):
    """A classifier run by real Caffe (``caffe.Net``)."""

    backend_name = "pycaffe"

    def __init__(self, prototxt: "str | os.PathLike[str]", weights: "Optional[str | os.PathLike[str]]" = None,
                 device: str = "cpu") -> None:
        caffe = import_caffe()
        self._caffe = caffe
        self.prototxt = Path(prototxt)
        self.weights = Path(weights) if weights is not None else None
        kind, index = parse_device(device)
        if kind == "gpu":
            index = index or 0
            if not gpu_usable(index):
                raise BackendUnavailableError(
                    f"pycaffe cannot use {device}: this Caffe is a CPU-only build or the GPU is missing; "
                    "the engine runs on CUDA: use backend 'engine' (--backend engine)"
                )
            caffe.set_mode_gpu()
            caffe.set_device(index)
        else:
            caffe.set_mode_cpu()
        self.device = device

        text = read_text(self.prototxt, "prototxt")
        check_layer_count(count_layers(text), str(self.prototxt))
        patched = force_backward(text)
        netdef = parse_net(patched, source=str(self.prototxt))
        checked = self._validate_definition(netdef, str(self.prototxt))
        TABLE.require(checked.layers, PYCAFFE, str(self.prototxt))
        self._net_shapes, self._source = checked, str(self.prototxt)
        head = classifier_head(checked.layers, checked.blobs, PYCAFFE, str(self.prototxt))
        if self.weights is not None:
            # Everything Net::CopyTrainedLayersFrom CHECKs, before Caffe reads the file.
            check_weights(self.weights, checked, str(self.prototxt))
        tmp = self._temporary_prototxt(patched)
        try:
            self.net = caffe.Net(tmp, caffe.TEST)
        except MemoryError:  # boost.python's std::bad_alloc
            raise CaffeRelabelError(
                f"{self.prototxt}: not enough memory for the net's {checked.elements} values (data and gradients)"
            ) from None
        finally:
            os.unlink(tmp)
        if self.weights is not None:
            self.net.copy_from(str(self.weights))
            check_loaded({name: [blob.data for blob in blobs] for name, blobs in self.net.params.items()},
                         str(self.weights))

        self._input = self.net.inputs[0]
        # The class scores, the logits and where the backward starts: see caffe_relabel.netdef.layers.head
        # (checked before Caffe built the net).
        self._output = head.scores
        self._layer_names = list(self.net._layer_names)
        self._softmax_out = head.softmax is not None
        self._logits = head.logits
        # Backpropagate from the layer below the one the backward skips (Caffe inserts Split
        # layers, so find it by name); None: the skipped layer reads the input, d/dx = d/dlogits.
        below = (self._layer_names.index(head.skipped) if head.skipped is not None else len(self._layer_names)) - 1
        self._backward_start = self._layer_names[below] if below >= 0 else None
        shape = tuple(self.net.blobs[self._input].data.shape[1:])
        if len(shape) != 3:
            raise ModelFormatError(f"{self.prototxt}: expected a C x H x W input blob, got shape {list(shape)}")
        self._input_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self._num_classes = int(np.prod(self.net.blobs[self._output].data.shape[1:]))

    @staticmethod
    def _temporary_prototxt(text: str) -> str:
        """The force_backward definition in a temporary file, for caffe.Net (which reads only files)."""
        tmp = None
        try:
            with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
                tmp = f.name
                f.write(text)
            return tmp
        except OSError as e:  # no usable temporary folder, or a full disk
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            where = tmp or "the temporary folder ($TMPDIR)"
            raise OutputError(f"{where}: cannot write the net definition for Caffe: {e.strerror or e}") from None

    @staticmethod
    def _validate_definition(netdef: Any, source: str) -> NetShapes:
        checked = check_net(netdef, source)
        for layer in checked.layers:  # upgraded: a V1 file's engine fields are there too
            for field, value in layer.ListFields():
                # A CPU-only Caffe aborts on engine: CUDNN, and pycaffe cannot say how it was built.
                if field.name.endswith("_param") and getattr(value, "engine", 0) == _CUDNN:
                    raise UnsupportedLayerError(
                        f"{source}: layer {layer.name!r}: {field.name}.engine: CUDNN cannot be checked against this "
                        "Caffe build; expected DEFAULT (Caffe then uses cuDNN where it has it)"
                    )
        return checked

    @property
    def module(self) -> Any:
        raise BackendUnavailableError(
            "this model runs on real Caffe (backend 'pycaffe'), which is C++, not a torch.nn.Module; "
            "load it with backend='engine' for a module with the same numerics"
        )

    @property
    def blob_names(self) -> list[str]:
        return list(self.net.blobs.keys())

    def _run_forward(self, x: np.ndarray) -> None:
        x = self._check_input(x)
        blob = self.net.blobs[self._input]
        if blob.data.shape[0] != x.shape[0]:
            # _check_input has checked every blob at this batch (check_batch), so Caffe's reshape cannot abort.
            blob.reshape(*x.shape)
            self.net.reshape()
        blob.data[...] = x
        self.net.forward()

    def _probs(self) -> np.ndarray:
        out = self.net.blobs[self._output].data.reshape(self.net.blobs[self._output].data.shape[0], -1)
        if self._softmax_out:
            return out.copy()
        z = out.astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._run_forward(x)
        return self._probs()

    def loss_and_gradient(self, x: np.ndarray, targets: Sequence[int]) -> LossGradient:
        self._run_forward(x)
        n = self.net.blobs[self._input].data.shape[0]
        t = self._check_targets(targets, n)
        probs = self._probs()
        loss, dlogits = softmax_cross_entropy_grad(probs, t)
        logits = self.net.blobs[self._logits]
        logits.diff[...] = dlogits.reshape(logits.diff.shape)
        if self._backward_start is not None:  # None: the Softmax reads the input itself, d/dx = d/dlogits
            self.net.backward(start=self._backward_start)
        grad = self.net.blobs[self._input].diff.copy()
        return LossGradient(probs=probs, loss=loss, grad=grad)

    def blob(self, x: np.ndarray, name: str) -> np.ndarray:
        self._check_blob_name(name)
        self._run_forward(x)
        return self.net.blobs[name].data.copy()
