"""Adding weights to a built layer: new languages and new speakers (paper sec. 4.2)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

__all__ = ["weights_may_be_added"]


@contextlib.contextmanager
def weights_may_be_added(layer: keras.layers.Layer) -> Iterator[None]:
    """Lets `layer.add_weight` run after `build()`.

    Keras 3 locks a layer's variable tracker once it is built. Adding a language code or a speaker
    output layer is exactly such a late addition; Keras unlocks the tracker the same way for
    `quantize()`. The existing weights are untouched.
    """
    was_locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        yield
    finally:
        if was_locked:
            layer._tracker.lock()
