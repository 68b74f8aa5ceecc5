"""The layers need the TensorFlow backend: under another one, a single clear error at import that says the fix."""

import ast
import os
import subprocess
import sys

import keras
import pytest

from mlms_keras.layers.backend import KerasBackendError, require_tensorflow_backend

# Under another backend: record what the failed import left in sys.modules, then import again uncaught so that
# stderr shows what a user sees.
_IMPORT_UNDER_ANOTHER_BACKEND = """
import sys
try:
    {statement}
except ImportError:
    pass
else:
    print("imported")
print(sorted(name for name in sys.modules if name.startswith("mlms_keras.")))
{statement}
"""


@pytest.mark.parametrize("statement", ["import mlms_keras.layers", "from mlms_keras import ClusterAdaptiveTowers"])
def test_another_keras_backend_is_refused_at_import_with_the_fix(statement):
    """The layers need tf.while_loop and tf.custom_gradient: under another backend, one clear error at import."""
    env = dict(os.environ, KERAS_BACKEND="numpy", TF_CPP_MIN_LOG_LEVEL="3")  # numpy ships with Keras
    code = _IMPORT_UNDER_ANOTHER_BACKEND.format(statement=statement)
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1 and "imported" not in completed.stdout
    # Nothing half-imported: no layer module ran, only the backend check (and the lazy package root).
    left = set(ast.literal_eval(completed.stdout.strip().splitlines()[-1]))
    assert left <= {"mlms_keras.layers.backend", "mlms_keras.utils", "mlms_keras.utils.lazy"}
    # One error, the same on every attempt, and no traceback of another (chained) error.
    stderr = completed.stderr.strip()
    assert stderr.count("Traceback (most recent call last)") == 1 and "direct cause" not in stderr
    last_line = stderr.splitlines()[-1]
    assert last_line.startswith("mlms_keras.layers.backend.KerasBackendError:")
    assert "configured for the 'numpy' backend" in last_line and "`KERAS_BACKEND=tensorflow`" in last_line


def test_a_keras_already_imported_on_another_backend_is_refused(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(KerasBackendError, match=r"configured for the 'jax' backend\. Set `KERAS_BACKEND=tensorflow`"):
        require_tensorflow_backend()


def test_the_backend_error_is_a_user_error_the_command_line_reports_in_one_line():
    assert issubclass(KerasBackendError, ImportError) and issubclass(KerasBackendError, ValueError)
