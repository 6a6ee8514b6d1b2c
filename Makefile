PY := .venv/bin/python

.PHONY: setup test test-slow proto fuzz

# Everything: system packages, Caffe + pycaffe (cached), .venv, test models.
setup:
	bash scripts/setup.sh

# The default test run (CI).
test:
	$(PY) -m pytest -q

# Slow checks: full-size models, long fuzzing.
test-slow:
	$(PY) -m pytest -q -m slow

# Regenerate the protobuf module from caffe_relabel/netdef/proto/caffe_relabel_caffe.proto.
proto:
	cd caffe_relabel/netdef/proto && protoc --python_out=. caffe_relabel_caffe.proto

# Fuzz readers, both backends, the CLI, the sweep store and the reliability suite with a long budget:
# 2000 inputs per target (the default test run tries 60), about 7 minutes on 2 cores; it ends with the
# reliability counts (inputs, aborts, hangs, OOM kills, tracebacks).
fuzz:
	FUZZ_EXAMPLES=2000 $(PY) -m pytest -q tests/fuzz
