"""The tiny MLMS model every test builds: one home for its sizes and its seeding.

`tiny_model(seed, ...)` seeds Keras (so weights are reproducible), then builds `build_mlms_model` from the
"tiny" preset (ReLU 16, 2 LSTMP layers of 16 cells projected to 8, L = number of languages). Tests compile it
themselves, with the optimizer and loss they need.
"""

import keras

from mlms_keras.models import MLMSConfig, build_mlms_model

#: Default sizes: 6 linguistic inputs, 3 languages, 4 speakers.
INPUT_DIM, NUM_LANGUAGES, NUM_SPEAKERS = 6, 3, 4


def tiny_config(input_dim=INPUT_DIM, num_languages=NUM_LANGUAGES, num_speakers=NUM_SPEAKERS, **overrides):
    """`MLMSConfig.preset("tiny", ...)` with the test sizes; `overrides` are further config fields."""
    return MLMSConfig.preset(
        "tiny", input_dim=input_dim, num_languages=num_languages, num_speakers=num_speakers, **overrides
    )


def tiny_model(seed=0, *, stateful=False, batch_size=None, jit_recurrence="training", **sizes_and_overrides):
    """A freshly initialised tiny MLMS model, `keras.utils.set_random_seed(seed)` first.

    Args:
        seed: the weights' seed (`None`: do not seed).
        stateful, batch_size, jit_recurrence: as `build_mlms_model`.
        **sizes_and_overrides: `input_dim`, `num_languages`, `num_speakers` and any other `MLMSConfig` field.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return build_mlms_model(
        tiny_config(**sizes_and_overrides), stateful=stateful, batch_size=batch_size, jit_recurrence=jit_recurrence
    )
