"""Shared pytest configuration. Fixtures used by one test file live in that file."""

import os

# Keep TensorFlow quiet and deterministic on the 2-core CI machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
