"""One inference graph per model, for inputs of any batch size and any number of frames.

Keras's `predict_on_batch` traces its graph again for each new input shape until it relaxes the shapes, and a trace
of the acoustic model's time loops costs seconds. Scoring loops over batches of varying length (the closest-speaker
search, held-out metrics) call the model through `inference_function` instead: one trace per model. It is meant
for this package's models, whose layers handle a time axis of unknown length in a graph; some stock Keras layers do
not (`TimeDistributed` in Keras 3.15 takes the batch size for the time steps there), so the training callbacks,
which may score any model, keep `predict_on_batch`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

__all__ = ["inference_function", "predict"]

_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_function(model) -> Callable:
    """A `tf.function` of `model(inputs, training=False)` whose input shapes are the model's own, batch and time free.

    Args:
        model: a Keras model with named inputs (e.g. `{"linguistic": (batch, frames, D) float32, "language":
            (batch,) int32, "speaker": (batch,) int32}`).

    Returns:
        A callable taking that dict of arrays and returning the output tensor; cached per model (traced again
        once the model's variables change, e.g. after it grew).
    """
    import tensorflow as tf

    # A model that grew (`add_language`, `add_speaker`) has new variables and tables: its old graph is stale.
    structure = tuple((id(weight), tuple(weight.shape)) for weight in model.weights)
    cached_structure, function = _FUNCTIONS.get(model, (None, None))
    if cached_structure != structure:
        inputs = model.input
        if not isinstance(inputs, dict):
            raise ValueError(f"model {model.name!r}: inference_function needs named (dict) inputs")
        signature = {name: tf.TensorSpec(tensor.shape, tensor.dtype) for name, tensor in inputs.items()}
        function = tf.function(lambda batch: model(batch, training=False), input_signature=[signature])
        _FUNCTIONS[model] = (structure, function)
    return function


def predict(model, inputs: dict) -> np.ndarray:
    """`model`'s output for one batch of `inputs` (a dict of arrays or tensors) as a numpy array, with one trace."""
    function = inference_function(model)
    dtypes = {name: tensor.dtype for name, tensor in model.input.items()}
    return np.asarray(function({name: np.asarray(value, dtypes[name]) for name, value in inputs.items()}))
