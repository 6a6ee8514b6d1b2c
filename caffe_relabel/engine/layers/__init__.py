"""One file per layer family: the modules and the builders that the layer table
(:mod:`caffe_relabel.netdef.layers`) names, imported when a net is built."""
