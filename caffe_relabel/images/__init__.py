"""Images: files to pixels, pixels to network blobs and back, and the paper's distortion.

- :mod:`.decode`: image files to pixel arrays with bounded time and memory;
- :mod:`.files`: which files are images (a folder's, sorted);
- :mod:`.preprocess`: :class:`InputSpec`, Caffe's input transform, image <-> blob, saving;
- :mod:`.distortion`: the paper's RMS distortion measure.
"""
