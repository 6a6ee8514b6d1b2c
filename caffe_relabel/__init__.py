"""caffe-relabel: the paper's relabelling (Robinson & Graham, 2015) for Caffe classifiers.

    from caffe_relabel import Relabeller
    result = Relabeller("bvlc_googlenet").run("cat.jpg", "half track")
"""

from caffe_relabel.version import __version__

# Before any module below loads torch or caffe: their thread pools read it once (see threads.py).
from caffe_relabel.threads import set_wait_policy  # noqa: E402

set_wait_policy()

from caffe_relabel.errors import (  # noqa: E402
    ArgumentError,
    BackendUnavailableError,
    CaffeRelabelError,
    DownloadError,
    ImageFormatError,
    ModelFormatError,
    ModelNotFoundError,
    UnsupportedLayerError,
    WeightsMismatchError,
)
from caffe_relabel.models.model import Model, Prediction, load_model  # noqa: E402
from caffe_relabel.models.options import ModelOptions  # noqa: E402
from caffe_relabel.images.preprocess import InputSpec  # noqa: E402
from caffe_relabel.relabel.goals import Goal, LeastLikely, TargetClass, Untargeted  # noqa: E402
from caffe_relabel.relabel.relabeller import Relabeller  # noqa: E402
from caffe_relabel.relabel.results import BatchResult, RelabelResult, StopReason  # noqa: E402
from caffe_relabel.relabel.settings import RelabelSettings  # noqa: E402

__all__ = [
    "ArgumentError",
    "BackendUnavailableError",
    "BatchResult",
    "CaffeRelabelError",
    "DownloadError",
    "Goal",
    "ImageFormatError",
    "InputSpec",
    "LeastLikely",
    "Model",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelOptions",
    "Prediction",
    "RelabelResult",
    "RelabelSettings",
    "Relabeller",
    "StopReason",
    "TargetClass",
    "UnsupportedLayerError",
    "Untargeted",
    "WeightsMismatchError",
    "__version__",
    "load_model",
]
