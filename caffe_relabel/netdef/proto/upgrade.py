"""Old Caffe net formats to the current one, as Caffe's ``upgrade_proto.cpp`` does.

The BVLC AlexNet and CaffeNet caffemodels (and many old prototxts) use the V1
``layers`` field (field 2, enum types such as ``CONVOLUTION``) and the
net-level ``input``/``input_dim``/``input_shape`` fields. :func:`upgrade_net`
returns a copy that uses only the current ``layer`` field (string types, an
``Input`` layer first), applying Caffe's upgrades in Caffe's order:
data-transformation fields, V1 -> current layers, input fields, BatchNorm
param specs. V0 definitions (``layers { layer { ... } }``, pre-2014) are
refused: Caffe itself only half-supports them.
"""

from __future__ import annotations

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter, NetParameter, ParamSpec, V1LayerParameter

from caffe_relabel.errors import ModelFormatError

_V1 = V1LayerParameter

# UpgradeV1LayerType: V1 enum -> current type string (upgrade_proto.cpp).
V1_TYPE_NAMES: dict[int, str] = {
    _V1.NONE: "",
    _V1.ABSVAL: "AbsVal",
    _V1.ACCURACY: "Accuracy",
    _V1.ARGMAX: "ArgMax",
    _V1.BNLL: "BNLL",
    _V1.CONCAT: "Concat",
    _V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    _V1.CONVOLUTION: "Convolution",
    _V1.DECONVOLUTION: "Deconvolution",
    _V1.DATA: "Data",
    _V1.DROPOUT: "Dropout",
    _V1.DUMMY_DATA: "DummyData",
    _V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    _V1.ELTWISE: "Eltwise",
    _V1.EXP: "Exp",
    _V1.FLATTEN: "Flatten",
    _V1.HDF5_DATA: "HDF5Data",
    _V1.HDF5_OUTPUT: "HDF5Output",
    _V1.HINGE_LOSS: "HingeLoss",
    _V1.IM2COL: "Im2col",
    _V1.IMAGE_DATA: "ImageData",
    _V1.INFOGAIN_LOSS: "InfogainLoss",
    _V1.INNER_PRODUCT: "InnerProduct",
    _V1.LRN: "LRN",
    _V1.MEMORY_DATA: "MemoryData",
    _V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
    _V1.MVN: "MVN",
    _V1.POOLING: "Pooling",
    _V1.POWER: "Power",
    _V1.RELU: "ReLU",
    _V1.SIGMOID: "Sigmoid",
    _V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
    _V1.SILENCE: "Silence",
    _V1.SOFTMAX: "Softmax",
    _V1.SOFTMAX_LOSS: "SoftmaxWithLoss",
    _V1.SPLIT: "Split",
    _V1.SLICE: "Slice",
    _V1.TANH: "TanH",
    _V1.WINDOW_DATA: "WindowData",
    _V1.THRESHOLD: "Threshold",
}

# Data layers whose old parameters carried the transformation fields.
_DATA_PARAMS = {_V1.DATA: "data_param", _V1.IMAGE_DATA: "image_data_param", _V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def needs_upgrade(net: NetParameter) -> bool:
    """Whether ``net`` uses any field that :func:`upgrade_net` rewrites."""
    return bool(len(net.layers) or len(net.input) or _old_batch_norm(net))


def upgrade_net(net: NetParameter, source: str = "<net>") -> NetParameter:
    """A copy of ``net`` in the current format (``layer`` only, Input layer first)."""
    out = NetParameter()
    out.CopyFrom(net)
    if len(out.layers):
        if len(out.layer):
            raise ModelFormatError(
                f"{source}: the definition has both 'layer' (current) and 'layers' (V1) fields; "
                "expected one of them (Caffe refuses this too)"
            )
        _upgrade_v1_layers(out, source)
    if len(out.input):
        _upgrade_input(out, source)
    for layer in _old_batch_norm(out):
        # Old BatchNorm definitions declared three learnable params; Caffe freezes them.
        for spec in layer.param:
            spec.lr_mult = 0.0
            spec.decay_mult = 0.0
    return out


def upgrade_v1_layer(v1: V1LayerParameter, source: str = "<net>") -> LayerParameter:
    """One V1 layer as a current LayerParameter (UpgradeV1LayerParameter)."""
    if v1.HasField("layer"):
        raise ModelFormatError(
            f"{source}: layer {v1.name!r} uses the V0 layer format (layers {{ layer {{ ... }} }}); "
            "expected V1 or current layers; convert it with Caffe's upgrade_net_proto_text"
        )
    layer = LayerParameter()
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    if v1.HasField("name"):
        layer.name = v1.name
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        if v1.type not in V1_TYPE_NAMES:
            raise ModelFormatError(f"{source}: layer {v1.name!r} has unknown V1 layer type {v1.type}")
        layer.type = V1_TYPE_NAMES[v1.type]
    layer.blobs.extend(v1.blobs)
    # The per-blob lists (param names, share modes, learning rates, decays)
    # become one ParamSpec per blob index.
    specs = max(len(v1.param), len(v1.blob_share_mode), len(v1.blobs_lr), len(v1.weight_decay))
    for i in range(specs):
        spec = layer.param.add()
        if i < len(v1.param):
            spec.name = v1.param[i]
        if i < len(v1.blob_share_mode):
            spec.share_mode = (
                ParamSpec.STRICT if v1.blob_share_mode[i] == _V1.STRICT else ParamSpec.PERMISSIVE
            )
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    layer.loss_weight.extend(v1.loss_weight)
    # Every V1 *_param message (and transform_param) has a namesake of the
    # same message type in LayerParameter: copied as Caffe copies each one.
    for field, value in v1.ListFields():
        if field.name.endswith("_param"):
            getattr(layer, field.name).CopyFrom(value)
    return layer


def _upgrade_v1_layers(net: NetParameter, source: str) -> None:
    for v1 in net.layers:
        _move_transform_fields(v1)
    upgraded = [upgrade_v1_layer(v1, source) for v1 in net.layers]
    net.ClearField("layers")
    net.layer.extend(upgraded)


def _move_transform_fields(v1: V1LayerParameter) -> None:
    # UpgradeNetDataTransformation: scale/mean_file/crop_size/mirror moved
    # from the data parameters into transform_param.
    name = _DATA_PARAMS.get(v1.type)
    if name is None or not v1.HasField(name):
        return
    param = getattr(v1, name)
    for field in _TRANSFORM_FIELDS:
        if param.HasField(field):
            setattr(v1.transform_param, field, getattr(param, field))
            param.ClearField(field)


def _upgrade_input(net: NetParameter, source: str) -> None:
    # UpgradeNetInput: the input fields become an "input" Input layer at the
    # front; an input without shape or dims (old caffemodels) is just dropped.
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        n = len(net.input)
        if has_shape and len(net.input_shape) != n:
            raise ModelFormatError(
                f"{source}: {n} net inputs but {len(net.input_shape)} input_shape entries; expected one per input"
            )
        if not has_shape and len(net.input_dim) != 4 * n:
            raise ModelFormatError(
                f"{source}: {n} net inputs but {len(net.input_dim)} input_dim values; expected 4 per input"
            )
        layer = LayerParameter(name="input", type="Input")
        for i, top in enumerate(net.input):
            layer.top.append(top)
            shape = layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i:4 * i + 4])
        rest = list(net.layer)
        net.ClearField("layer")
        net.layer.append(layer)
        net.layer.extend(rest)
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")


def _old_batch_norm(net: NetParameter) -> list[LayerParameter]:
    return [layer for layer in net.layer if layer.type == "BatchNorm" and len(layer.param) == 3]
