"""Caffe's formats and rules, without torch: what a net definition and its weights are.

- :mod:`.proto`: the wire format (Caffe's schema under its own package name) and readers/writers;
- :mod:`.layers`: the one layer table, a file per layer family, each type's checks and builders;
- :mod:`.prototxt`: patching a definition so gradients reach the data layer (``force_backward``);
- :mod:`.netcheck`: the static check that runs before any backend builds a net (Caffe aborts on its CHECKs);
- :mod:`.weights`: parameter blobs checked against the definition;
- :mod:`.transform_param`: a train_val data layer's ``transform_param`` read as an input transform.

Both backends (:mod:`caffe_relabel.backends`) build on this; it imports neither.
"""
