"""The relabelling: the paper's sign-gradient loop and everything it hands back.

- :mod:`.settings`: :class:`RelabelSettings`, every number that changes what the loop computes;
- :mod:`.goals`: what counts as success (targeted, untargeted, least-likely), one ``reached()`` each;
- :mod:`.relabeller`: :class:`Relabeller`, the loop with per-sample stopping and continuous batching;
- :mod:`.arrays` / :mod:`.arrays_torch`: the loop's whole-batch array work in numpy or on the engine's device;
- :mod:`.results`: the plain result records;
- :mod:`.batch_input`: image batches as attack libraries hand them over;
- :mod:`.saved`: what a saved (8-bit, possibly lossy) file is classified as.

Depends on :mod:`caffe_relabel.models` (a classifier with its input spec) and
:mod:`caffe_relabel.images` (image <-> blob); nothing here prints.
"""
