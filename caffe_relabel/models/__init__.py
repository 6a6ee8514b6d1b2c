"""Models: a classifier with its input spec and class names, and where models come from.

- :mod:`.model`: :class:`Model` and :func:`load_model` (a zoo name or a user's prototxt + caffemodel);
- :mod:`.zoo`: the known models, their weights, inputs and classes;
- :mod:`.testmodels`: models this project makes itself, for tests and offline demos;
- :mod:`.convert`: converters from other frameworks' pretrained models into Caffe models.
"""
