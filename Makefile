# One command each on a fresh machine: `make demo`, `make test`.
# The first target to run creates .venv and installs the pinned environment into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.base-installed
HOROVOD := $(VENV)/.horovod-installed
EXTRA ?= cpu

.PHONY: demo test setup horovod clean-venv

setup: $(BASE)

$(BASE): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<25" "setuptools<70" wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRA),onnx,tensorboard,test]'
	touch $@

# Horovod builds from source against the installed mxnet (about 6 minutes on 2 cores);
# HOROVOD_GPU_OPERATIONS=NCCL and MPI are for GPU clusters (see README).
horovod: $(HOROVOD)

$(HOROVOD): $(BASE)
	HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	$(PY) -m pip install -q -c constraints.txt --no-build-isolation horovod==0.28.1
	touch $@

demo: $(BASE)
	$(PY) scripts/classification/demo.py

test: $(BASE) $(HOROVOD)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
