"""Models: a classifier with its input spec and class names, and where models come from.

- :mod:`.model`: :class:`Model` (``predict``) and :func:`load_model` (a zoo name or a user's prototxt + caffemodel);
- :mod:`.options`: :class:`ModelOptions`, every option that names a model (what the command line takes);
- :mod:`.labels`: class-name files in Caffe's synset_words.txt format;
- :mod:`.zoo`: the known models, their weights, inputs and classes;
- :mod:`.testmodels`: models this project makes itself, for tests and offline demos;
- :mod:`.convert`: converters from other frameworks' pretrained models into Caffe models.
"""
