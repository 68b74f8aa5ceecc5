"""The Keras backend the layers need: TensorFlow.

The fused layers run their time loops with `tf.while_loop` and their LSTMP backward pass with
`tf.custom_gradient`, so they work only under Keras's TensorFlow backend. Importing
`mlms_keras.layers` under another backend raises `KerasBackendError` at once, with the fix, rather
than an obscure failure at the first call.
"""

from __future__ import annotations

import os
import sys

__all__ = ["REQUIRED_BACKEND", "KerasBackendError", "require_tensorflow_backend"]

REQUIRED_BACKEND = "tensorflow"


class KerasBackendError(ImportError, ValueError):
    """Keras runs on a backend other than TensorFlow.

    An `ImportError` (it is raised while `mlms_keras.layers` is imported) and a `ValueError`, so the
    `mlms` command reports it in one line like the other settings a user can fix.
    """


def _message(backend: str, import_error: ImportError | None = None) -> str:
    failure = "" if import_error is None else f" (Keras does not even import under it: {import_error})"
    return (
        f"mlms_keras.layers needs the Keras TensorFlow backend (the layers use tf.while_loop and "
        f"tf.custom_gradient), but Keras is configured for the {backend!r} backend{failure}. Set "
        f'`KERAS_BACKEND={REQUIRED_BACKEND}` in the environment (or `"backend": "{REQUIRED_BACKEND}"` in '
        "~/.keras/keras.json) before Keras is imported."
    )


def require_tensorflow_backend() -> None:
    """Raises `KerasBackendError` unless Keras runs on the TensorFlow backend.

    Imports Keras if it is not imported yet. When Keras itself fails to import because the backend
    named in `KERAS_BACKEND` is another one that is not installed (for example `KERAS_BACKEND=jax`
    without JAX, or `KERAS_BACKEND=numpy`, which needs JAX in Keras 3.15), the error names that backend
    and the import failure in its message, and does not chain Keras's traceback: the fix is the same.

    Raises:
        KerasBackendError: Keras is (or would be) on another backend.
    """
    if "keras" not in sys.modules:
        requested = os.environ.get("KERAS_BACKEND")
        try:
            import keras  # noqa: F401
        except ImportError as error:
            if requested and requested != REQUIRED_BACKEND:
                raise KerasBackendError(_message(requested, error)) from None
            raise
    import keras

    backend = keras.config.backend()
    if backend != REQUIRED_BACKEND:
        raise KerasBackendError(_message(backend))
