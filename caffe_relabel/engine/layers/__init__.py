"""One file per layer family; importing this package registers every builder."""

from . import conv, data, eltwise, inner_product, lrn, neuron, normalization, pooling, shape, softmax

__all__ = ["conv", "data", "eltwise", "inner_product", "lrn", "neuron", "normalization", "pooling", "shape", "softmax"]
