"""A net of any depth, made on the fly (never committed): an Input, a chain of ReLUs, an InnerProduct, a Softmax.

Its only weights are the InnerProduct's, so one small caffemodel serves every depth.
"""

from __future__ import annotations

from pathlib import Path

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import NetParameter

#: Layers besides the ReLUs: Input, InnerProduct, Softmax.
FIXED_LAYERS = 3


def deep_prototxt(path: Path, layers: int, padding: int = 0) -> Path:
    """A ``layers``-layer definition of a 1 x 4 x 4 input; ``padding`` spaces per layer make the file larger."""
    pad = " " * padding
    with open(path, "w") as f:
        f.write('name: "deep"\nlayer { name: "data" type: "Input" top: "l0" '
                'input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n')
        relus = layers - FIXED_LAYERS
        for i in range(relus):
            f.write(f'layer {{ name: "relu{i}" type: "ReLU" bottom: "l{i}" top: "l{i + 1}" }}{pad}\n')
        f.write(f'layer {{ name: "fc" type: "InnerProduct" bottom: "l{relus}" top: "fc" '
                'inner_product_param { num_output: 10 } }\n'
                'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }\n')
    return path


def deep_weights(path: Path) -> Path:
    """The caffemodel of any :func:`deep_prototxt` net."""
    net = NetParameter()
    layer = net.layer.add(name="fc", type="InnerProduct")
    for shape in ([10, 16], [10]):
        blob = layer.blobs.add()
        blob.shape.dim.extend(shape)
        blob.data.extend([0.01 * (i % 7) for i in range(shape[0] * (shape[1] if len(shape) > 1 else 1))])
    path.write_bytes(net.SerializeToString())
    return path
