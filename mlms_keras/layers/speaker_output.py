"""SpeakerRNNOutput: one linear recurrent output layer per speaker (Li & Zen 2016, Eq. 2)."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf
from keras import ops

from mlms_keras.layers.growth import weights_may_be_added
from mlms_keras.layers.recurrence import run_time_loop
from mlms_keras.layers.serialization import SERIALIZATION_PACKAGE
from mlms_keras.layers.streaming import StreamingState
from mlms_keras.layers.validation import checked_ids
from mlms_keras.utils.validation import check_integer

__all__ = ["SpeakerRNNOutput", "SpeakerWeights"]


class SpeakerWeights(NamedTuple):
    """The output layer of one speaker (Eq. 2): `y_t = h_t W_f + y_{t-1} W_r + b`.

    Attributes:
        forward_kernel: `(hidden_dim, output_dim)`, W_f.
        recurrent_kernel: `(output_dim, output_dim)`, W_r.
        bias: `(output_dim,)`, b.
    """

    forward_kernel: Any
    recurrent_kernel: Any
    bias: Any


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class SpeakerRNNOutput(keras.layers.Layer):
    """Speaker-dependent linear recurrent output layers.

    For each sequence of speaker s: `y_t = h_t W_f[s] + y_{t-1} W_r[s] + b[s]` (Li & Zen 2016, Eq. 2;
    the recurrent output layer of Zen & Sak 2015). Each speaker owns a forward matrix
    `(hidden_dim, output_dim)` (128 x 49 in the paper), a recurrent matrix `(output_dim, output_dim)`
    and a bias `(output_dim,)` (a `SpeakerWeights`), stored as separate weights so that adding a
    speaker leaves the others untouched. One batch may mix speakers. The recurrent matrices start at zero (a plain
    linear output layer), which keeps the linear recurrence stable at initialisation.

    Args:
        num_speakers: S, number of speakers.
        output_dim: vocoder parameters per frame (49).
        stateful: carry `y_{t-1}` across calls for streaming (needs a static batch size).

    Call arguments:
        hidden: `(batch, frames, hidden_dim)`, the towers' output h^(u).
        speaker: `(batch,)` integer speaker ids in `[0, num_speakers)`. May be omitted when
            `num_speakers == 1`.
        hidden_mask: optional `(batch, frames)` boolean; masked frames hold y and output zero.

    Returns:
        `(batch, frames, output_dim)`.

    Example:

    >>> layer = SpeakerRNNOutput(num_speakers=3, output_dim=49)
    >>> tuple(layer(np.zeros((2, 5, 8), "float32"), np.array([0, 2])).shape)
    (2, 5, 49)

    Reference: Li & Zen (2016), Eq. 2 and sec. 4.1.
    """

    def __init__(self, num_speakers: int, output_dim: int = 49, stateful: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_speakers = check_integer("num_speakers", num_speakers)
        self.output_dim = check_integer("output_dim", output_dim)
        self.stateful = stateful
        self.supports_masking = True
        self.speaker_weights: list[SpeakerWeights] = []
        self.hidden_dim: int | None = None
        self._streaming_state: StreamingState | None = None

    def build(self, hidden_shape: tuple[int | None, ...], speaker_shape: tuple[int | None, ...] | None = None) -> None:
        if len(hidden_shape) != 3 or hidden_shape[-1] is None:
            raise ValueError(
                "`hidden` must have shape (batch, frames, hidden_dim) with a known hidden_dim; "
                f"received {tuple(hidden_shape)}"
            )
        self.hidden_dim = int(hidden_shape[-1])
        for _ in range(self.num_speakers):
            self._add_speaker_weights()
        if self.stateful:
            if hidden_shape[0] is None:
                raise ValueError("`stateful=True` needs a static batch size: pass `batch_size` to keras.Input")
            self._streaming_state = StreamingState((tf.zeros((hidden_shape[0], self.output_dim), self.compute_dtype),))

    def _add_speaker_weights(self, copy_from: int | None = None) -> None:
        speaker = len(self.speaker_weights)
        shapes = SpeakerWeights(
            forward_kernel=(self.hidden_dim, self.output_dim),
            recurrent_kernel=(self.output_dim, self.output_dim),
            bias=(self.output_dim,),
        )
        # A zero recurrent matrix starts the layer as a plain linear output layer.
        initializers = SpeakerWeights(forward_kernel="glorot_uniform", recurrent_kernel="zeros", bias="zeros")
        if copy_from is not None:
            source = self.speaker_weights[copy_from]
            initializers = SpeakerWeights(
                **{field: keras.initializers.Constant(ops.convert_to_numpy(w)) for field, w in source._asdict().items()}
            )
        # Created in field order (forward kernel, recurrent kernel, bias): the order in saved files.
        self.speaker_weights.append(
            SpeakerWeights(
                **{
                    field: self.add_weight(
                        name=f"{field}_{speaker}",
                        shape=getattr(shapes, field),
                        initializer=getattr(initializers, field),
                    )
                    for field in SpeakerWeights._fields
                }
            )
        )

    def add_speaker(self, copy_from: int | None = None) -> int:
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

    def speaker_variables(self, speaker: int) -> SpeakerWeights:
        """The variables of one speaker: `SpeakerWeights(forward_kernel, recurrent_kernel, bias)`."""
        return self.speaker_weights[speaker]

    def reset_states(self) -> None:
        """Zeros `y_{t-1}` (start of a new utterance). Only for `stateful=True`."""
        if self._streaming_state is not None:
            self._streaming_state.reset()

    def _check_speaker(self, speaker, batch_size) -> Any:
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
        # Each sequence's own speaker: (batch, hidden, out), (batch, out, out), (batch, out).
        selected = SpeakerWeights(
            **{
                field: ops.take(
                    ops.stack([getattr(weights, field).value for weights in self.speaker_weights]), speaker, axis=0
                )
                for field in SpeakerWeights._fields
            }
        )
        # The forward products do not depend on the recurrence: all frames at once, time-major.
        forward_outputs = ops.transpose(
            ops.matmul(hidden, selected.forward_kernel) + selected.bias[:, None, :], (1, 0, 2)
        )
        mask = None if hidden_mask is None else ops.transpose(ops.cast(hidden_mask, "bool"))

        def step(frame_forward, carried):
            (previous_output,) = carried
            recurrent_term = ops.matmul(previous_output[:, None, :], selected.recurrent_kernel)
            output = frame_forward + ops.squeeze(recurrent_term, axis=1)
            return output, (output,)

        initial = self._streaming_state.read() if self.stateful else (ops.zeros_like(forward_outputs[0]),)
        outputs, final = run_time_loop(step, forward_outputs, initial, mask)
        if self.stateful:
            self._streaming_state.write(final)
        return ops.transpose(outputs, (1, 0, 2))

    def compute_output_shape(
        self, hidden_shape: tuple[int | None, ...], speaker_shape: tuple[int | None, ...] | None = None
    ) -> tuple[int | None, ...]:
        return tuple(hidden_shape[:2]) + (self.output_dim,)

    def compute_mask(self, hidden, previous_mask=None):
        return previous_mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_speakers": self.num_speakers, "output_dim": self.output_dim, "stateful": self.stateful})
        return config
