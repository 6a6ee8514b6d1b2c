"""The command line: `caffe-relabel` (:mod:`.main`) and `python -m caffe_relabel.experiments`.

:mod:`.relabel` (classify, relabel), :mod:`.models` and :mod:`.experiments`
hold the commands; :mod:`.exits` the exit codes and the error mapping that
every entry point uses; :mod:`.options` the argument types.
"""

from caffe_relabel.cli.exits import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from caffe_relabel.cli.main import main

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "main"]
