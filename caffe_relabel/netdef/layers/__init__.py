"""Caffe's layer types: the one table (:mod:`.table`) and a file per layer family.

Importing this package fills :data:`TABLE`; see :mod:`.table` for what an
entry holds and how a new type joins.
"""

from caffe_relabel.netdef.layers import conv, data, eltwise, inner_product, lrn, neuron, normalization, pooling, reduction, shape, softmax
from caffe_relabel.netdef.layers.check import LayerCheck, Param, Setup
from caffe_relabel.netdef.layers.table import BOTH, ENGINE, PYCAFFE, PYCAFFE_ONLY, TABLE, LayerTable, LayerType, register

__all__ = ["BOTH", "ENGINE", "PYCAFFE", "PYCAFFE_ONLY", "TABLE", "LayerCheck", "LayerTable", "LayerType", "Param",
           "Setup", "conv", "data", "eltwise", "inner_product", "lrn", "neuron", "normalization", "pooling",
           "reduction", "register", "shape", "softmax"]
