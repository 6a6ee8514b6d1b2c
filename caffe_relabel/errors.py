"""The library's exception types.

Every error a user can cause (a bad file, a bad argument, a missing model)
is one of these, with a message that names the file, the layer or field and
what was expected. The CLI maps them to exit codes.
"""

from __future__ import annotations


class CaffeRelabelError(Exception):
    """Base class of every error this library raises on purpose."""


class ModelFormatError(CaffeRelabelError, ValueError):
    """A prototxt, caffemodel or binaryproto that cannot be read or is inconsistent."""


class WeightsMismatchError(ModelFormatError):
    """A caffemodel whose blobs do not fit the network definition."""


class UnsupportedLayerError(ModelFormatError):
    """A layer type (or layer mode) that the chosen backend cannot run."""


class NetTooLargeError(ModelFormatError):
    """A net that cannot run at the batch asked for: a blob over Caffe's int count, more memory than the
    limit (CAFFE_RELABEL_MAX_NET_BYTES), or a layer fixed to another batch (Caffe would abort)."""


class ImageFormatError(CaffeRelabelError, ValueError):
    """An image file that cannot be read or turned into a network input."""


class BackendUnavailableError(CaffeRelabelError, RuntimeError):
    """A backend was asked for whose runtime (pycaffe, torch, CUDA) is missing."""


class ModelNotFoundError(CaffeRelabelError, LookupError):
    """A zoo model, weights file or class name that is not known or not present."""


class DownloadError(CaffeRelabelError, OSError):
    """A download that failed, was interrupted or did not verify."""


class ArgumentError(CaffeRelabelError, ValueError):
    """An argument of the wrong type or out of range: a usage error, not a bad file."""


class OutputError(CaffeRelabelError, OSError):
    """An output file that cannot be written (unwritable, full or missing folder); nothing partial is left."""
