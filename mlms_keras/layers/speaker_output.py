"""SpeakerRNNOutput: one linear recurrent output layer per speaker (Li & Zen 2016, Eq. 2)."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlms_keras.layers.growth import weights_may_be_added
from mlms_keras.layers.lstmp import SERIALIZATION_PACKAGE
from mlms_keras.layers.recurrence import run_time_loop
from mlms_keras.layers.streaming import StreamingState
from mlms_keras.layers.validation import checked_ids


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class SpeakerRNNOutput(keras.layers.Layer):
    """Speaker-dependent linear recurrent output layers.

    For each sequence of speaker s: y_t = h_t W_f[s] + y_{t-1} W_r[s] + b[s]  (Li & Zen 2016, Eq. 2;
    the recurrent output layer of Zen & Sak 2015). Each speaker owns a forward matrix
    `(hidden_dim, output_dim)` (128 x 49 in the paper), a recurrent matrix `(output_dim, output_dim)`
    and a bias `(output_dim,)`, stored as separate weights so that adding a speaker leaves the
    others untouched. One batch may mix speakers. The recurrent matrices start at zero (a plain
    linear output layer), which keeps the linear recurrence stable at initialisation.

    Args:
        num_speakers: S, number of speakers.
        output_dim: vocoder parameters per frame (49).
        stateful: carry y_{t-1} across calls for streaming (needs a static batch size).

    Call arguments:
        hidden: `(batch, frames, hidden_dim)`, the towers' output h^(u).
        speaker: `(batch,)` integer speaker ids in `[0, num_speakers)`. May be omitted when
            `num_speakers == 1`.
        hidden_mask: optional `(batch, frames)` boolean; masked frames hold y and output zero.

    Returns:
        `(batch, frames, output_dim)`.

    Example:
    >>> layer = SpeakerRNNOutput(num_speakers=3, output_dim=49)
    >>> layer(np.zeros((2, 5, 8), "float32"), np.array([0, 2])).shape
    (2, 5, 49)

    Reference: Li & Zen (2016), Eq. 2 and sec. 4.1.
    """

    def __init__(self, num_speakers, output_dim=49, stateful=False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_speakers", num_speakers), ("output_dim", output_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        self.num_speakers = int(num_speakers)
        self.output_dim = int(output_dim)
        self.stateful = stateful
        self.supports_masking = True
        self.speaker_weights = []
        self.hidden_dim = None
        self._streaming_state = None

    def build(self, hidden_shape, speaker_shape=None):
        if len(hidden_shape) != 3 or hidden_shape[-1] is None:
            raise ValueError(
                f"`hidden` must have shape (batch, frames, hidden_dim) with a known hidden_dim; received {tuple(hidden_shape)}"
            )
        self.hidden_dim = int(hidden_shape[-1])
        for _ in range(self.num_speakers):
            self._add_speaker_weights()
        if self.stateful:
            if hidden_shape[0] is None:
                raise ValueError("`stateful=True` needs a static batch size: pass `batch_size` to keras.Input")
            self._streaming_state = StreamingState([tf.zeros((hidden_shape[0], self.output_dim), self.compute_dtype)])

    def _add_speaker_weights(self, copy_from=None):
        speaker = len(self.speaker_weights)
        initializers = ("glorot_uniform", "zeros", "zeros")
        if copy_from is not None:
            initializers = [
                keras.initializers.Constant(ops.convert_to_numpy(w)) for w in self.speaker_weights[copy_from]
            ]
        shapes = ((self.hidden_dim, self.output_dim), (self.output_dim, self.output_dim), (self.output_dim,))
        names = (f"forward_kernel_{speaker}", f"recurrent_kernel_{speaker}", f"bias_{speaker}")
        self.speaker_weights.append(
            tuple(self.add_weight(name=n, shape=s, initializer=i) for n, s, i in zip(names, shapes, initializers))
        )

    def add_speaker(self, copy_from=None):
        """Adds an output layer for a new speaker and returns its id; other speakers are untouched.

        Args:
            copy_from: optional existing speaker id whose layer initialises the new one (a sensible
                start when adapting to a speaker who resembles it); fresh initialisation otherwise.
        """
        if not self.built:
            raise ValueError("Build the layer (call it once) before adding a speaker")
        if copy_from is not None and not 0 <= copy_from < self.num_speakers:
            raise ValueError(f"`copy_from` must be a speaker id in [0, {self.num_speakers}); received {copy_from}")
        with weights_may_be_added(self):
            self._add_speaker_weights(copy_from)
        self.num_speakers += 1
        return self.num_speakers - 1

    def speaker_variables(self, speaker):
        """The `(forward_kernel, recurrent_kernel, bias)` variables of one speaker."""
        return self.speaker_weights[speaker]

    def reset_states(self):
        """Zeros y_{t-1} (start of a new utterance). Only for `stateful=True`."""
        if self._streaming_state is not None:
            self._streaming_state.reset()

    def _check_speaker(self, speaker, batch_size):
        if speaker is None:
            if self.num_speakers != 1:
                raise ValueError("`speaker` is required when num_speakers > 1")
            return ops.zeros((batch_size,), dtype="int32")
        return checked_ids(speaker, self.num_speakers, "speaker", "add_speaker")

    def call(self, hidden, speaker=None, hidden_mask=None):
        if hidden.shape[-1] != self.hidden_dim:
            raise ValueError(
                f"`hidden` must have {self.hidden_dim} features (last axis); received shape {tuple(hidden.shape)}"
            )
        speaker = self._check_speaker(speaker, ops.shape(hidden)[0])
        forward, recurrent, bias = (
            ops.take(ops.stack([weights[part].value for weights in self.speaker_weights]), speaker, axis=0)
            for part in range(3)
        )  # (batch, hidden, out), (batch, out, out), (batch, out)
        # The forward products do not depend on the recurrence: all frames at once, time-major.
        forward_outputs = ops.transpose(ops.matmul(hidden, forward) + bias[:, None, :], (1, 0, 2))
        mask = None if hidden_mask is None else ops.transpose(ops.cast(hidden_mask, "bool"))

        def step(frame_forward, carried):
            output = frame_forward + ops.squeeze(ops.matmul(carried[0][:, None, :], recurrent), axis=1)
            return output, (output,)

        initial = self._streaming_state.read() if self.stateful else (ops.zeros_like(forward_outputs[0]),)
        outputs, final = run_time_loop(step, forward_outputs, initial, mask)
        if self.stateful:
            self._streaming_state.write(final)
        return ops.transpose(outputs, (1, 0, 2))

    def compute_output_shape(self, hidden_shape, speaker_shape=None):
        return tuple(hidden_shape[:2]) + (self.output_dim,)

    def compute_mask(self, hidden, previous_mask=None):
        return previous_mask

    def get_config(self):
        config = super().get_config()
        config.update({"num_speakers": self.num_speakers, "output_dim": self.output_dim, "stateful": self.stateful})
        return config
