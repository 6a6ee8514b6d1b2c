"""The paper's experiments, one module each; every one returns a plain result dataclass.

- :mod:`.relabel_examples` Section 3, Figures 1-2: a swapped pair, distortion over N relabellings
- :mod:`.sweep` (+ :mod:`.store`, :mod:`.dask_sweep`) Section 3.1: all-pairs success under the cap
- :mod:`.synthesis` Section 3.2, Figure 4: Gaussian noise relabelled
- :mod:`.svm` Section 4: an RBF SVM tells relabelled from true images
- :mod:`.limitations` Section 3.1's limits and Figure 3
"""
