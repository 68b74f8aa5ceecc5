"""Text to speech with a zoo voice: `Synthesizer`, in one pass or streaming.

Pipeline per sentence (the data flow of docs/architecture.md):

1. frontend: `FeatureLayout.phoneme_features(text, language)` (espeak-ng; sil, phonemes with pau between
   phrases, sil), the language's features with the other languages' dimensions zero;
2. durations: the duration model (`mlms_keras.models.duration.predict_durations`), frames per phoneme;
3. frame features: `expand_to_frames` (+3 coarse-coded positions, +1 duration), normalised with the voice's
   input statistics;
4. acoustic model with the language's code and the speaker's output layer; de-normalisation;
5. WORLD: the cepstral postfilter and synthesis (`mlms_keras.vocoder.synthesize`).

Any speaker speaks any language (cross-lingual): the language picks the frontend and the language code, the
speaker picks the output layer (and the duration model's), whatever language that speaker was trained on.

**Long text** is cut into sentences (`split_sentences`) and synthesised one at a time, so memory is bounded by the
longest sentence, not the text (`synthesize_to_file` also writes the audio as it goes).

**Streaming** (`stream`): the acoustic model is rebuilt stateful (batch 1) with the same weights; the frames of a
sentence go through it in chunks of `chunk_frames`, carrying the LSTM state (Zen & Sak 2015: unidirectional
LSTMs and a recurrent output layer need no look-ahead), so its outputs equal the one-pass outputs. WORLD
synthesis is not chunk-local: a pulse's response spans about +-fft_size/2 samples and pulse positions follow the
F0 phase accumulated from the start. Each chunk is therefore synthesised with `STREAM_CONTEXT_FRAMES` of left
context, the last `STREAM_LOOKAHEAD_FRAMES` frames are held back until the next chunk (their audio still
misses pulses beyond the chunk), and consecutive pieces are joined with a `STREAM_CROSSFADE_FRAMES` raised-cosine
crossfade, so the joins have no clicks. Before the crossfade the new piece is shifted by at most one pitch period
(60 Hz) to the lag whose waveform best matches the previous piece's tail (normalised cross-correlation, as in
WSOLA), so the two pulse trains add in step instead of doubling the pulses for 20 ms; the shift does not
accumulate, since every piece is placed within one period of its own frames. Every boundary sits on a multiple of 4
frames, a whole number of samples at every supported rate (5 ms x 22 050 Hz = 110.25 samples). The streamed audio
has exactly the batch audio's length; it differs from it only near the joins (pulse phase), which
`tests/synthesis/test_synthesis.py` bounds.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from mlms_keras import vocoder
from mlms_keras.frontend import espeak
from mlms_keras.frontend.linguistic import expand_to_frames
from mlms_keras.models.duration import edge_silences, frames_from_outputs
from mlms_keras.utils.fileio import atomic_output
from mlms_keras.vocoder.audio import WRITE_FORMATS

if TYPE_CHECKING:
    from mlms_keras.zoo import Voice

__all__ = [
    "DEFAULT_CHUNK_FRAMES",
    "STREAM_CONTEXT_FRAMES",
    "STREAM_CROSSFADE_FRAMES",
    "STREAM_LOOKAHEAD_FRAMES",
    "StageTimer",
    "Synthesizer",
    "split_sentences",
]

DEFAULT_CHUNK_FRAMES = 48
STREAM_CONTEXT_FRAMES = 12
STREAM_LOOKAHEAD_FRAMES = 8
STREAM_CROSSFADE_FRAMES = 4
STREAM_MIN_F0_HZ = 60.0  # the join search covers one pitch period at this F0
WARM_UP_TEXT = "1, 2, 3."  # digits: every language's frontend reads them
_FRAME_GRID = 4  # frame boundaries on multiples of 4 frames are whole samples at every supported rate
_SENTENCE_END = re.compile(r"(?<=[.!?…;:])[\"'»”)\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_characters: int = espeak.MAX_TEXT_CHARACTERS) -> list[str]:
    """Cut a text into sentences of at most `max_characters` (the frontend's limit per call).

    Splits after sentence punctuation (. ! ? … ; :) followed by white space; a longer sentence is cut after
    commas, and a still longer piece at white space. Empty pieces are dropped.

    Args:
        text: any text.
        max_characters: longest piece.

    Returns:
        The non-empty pieces, in order; joined with spaces they give the text's words in order.
    """
    pieces = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= max_characters:
            pieces.append(sentence)
            continue
        current = ""
        for part in _CLAUSE_END.split(sentence):
            for word in part.split() if len(part) > max_characters else [part]:
                candidate = f"{current} {word}".strip()
                if len(candidate) > max_characters and current:
                    pieces.append(current)
                    candidate = word
                current = candidate
        if current:
            pieces.append(current)
    return pieces


def _best_lag(tail: np.ndarray, wave: np.ndarray, begin: int, max_lag: int) -> int:
    """The shift in [-max_lag, max_lag] samples of `wave[begin:]` whose start best matches `tail` (normalised
    cross-correlation), kept so that `wave[begin + lag:]` exists."""
    length = len(tail)
    low, high = max(-max_lag, -begin), min(max_lag, len(wave) - begin - length)
    if length == 0 or high < low:
        return 0
    segment = wave[begin + low : begin + high + length].astype(np.float64)
    scores = np.correlate(segment, tail.astype(np.float64), mode="valid")
    energy = np.convolve(segment**2, np.ones(length), mode="valid")
    return low + int(np.argmax(scores / np.sqrt(energy + 1e-12)))


class StageTimer:
    """Seconds spent per stage (frontend, duration, acoustic, vocoder), summed over calls."""

    STAGES = ("frontend", "duration", "acoustic", "vocoder")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds


class Synthesizer:
    """Text + language + speaker -> waveform, with a loaded zoo voice.

    Args:
        voice: a `mlms_keras.zoo.Voice` (see `from_zoo`).
        chunk_frames: frames per acoustic-model call when streaming (a multiple of 4; 48 = 240 ms).
        postfilter_beta: cepstral postfilter strength (`vocoder.DEFAULT_POSTFILTER_BETA`; 1.0 switches it off).
        jit_streaming: compile the streaming model's time loops with XLA for the fixed chunk shape (compiled once,
            on first use or `warm_up`); False runs them as a TensorFlow graph loop.

    Example:
        >>> synthesizer = Synthesizer.from_zoo("teacher-small")            # doctest: +SKIP
        >>> wave = synthesizer.synthesize("Dzień dobry.", "pl", "en-us-female")  # doctest: +SKIP
        >>> for chunk in synthesizer.stream("Hello there.", "en-us", "fr-female"):  # doctest: +SKIP
        ...     play(chunk)
    """

    def __init__(
        self,
        voice: Voice,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        postfilter_beta: float = vocoder.DEFAULT_POSTFILTER_BETA,
        jit_streaming: bool = False,
    ) -> None:
        if chunk_frames < _FRAME_GRID or chunk_frames % _FRAME_GRID:
            raise ValueError(f"chunk_frames must be a positive multiple of {_FRAME_GRID}, got {chunk_frames}")
        if chunk_frames <= STREAM_LOOKAHEAD_FRAMES:
            raise ValueError(f"chunk_frames must exceed the look-ahead of {STREAM_LOOKAHEAD_FRAMES} frames")
        self.voice = voice
        self.chunk_frames = int(chunk_frames)
        self.postfilter_beta = float(postfilter_beta)
        self.jit_streaming = bool(jit_streaming)
        self._acoustic_call = None
        self._duration_call = None
        self._streaming_model = None
        self._streaming_call = None
        self.timer = StageTimer()

    @classmethod
    def from_zoo(cls, source: str | os.PathLike, sha256: str | None = None, **kwargs) -> Synthesizer:
        """A synthesizer for `mlms_keras.zoo.load_voice(source)` (built-in name, folder or URL); `kwargs` go to
        the constructor."""
        from mlms_keras.zoo import load_voice

        return cls(load_voice(source, sha256=sha256), **kwargs)

    # Tables --------------------------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Hz of the voice (and of every waveform this synthesizer returns)."""
        return self.voice.sample_rate

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes the voice speaks."""
        return tuple(sorted(self.voice.languages, key=self.voice.languages.get))

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker names of the voice (each can speak every language)."""
        return tuple(sorted(self.voice.speakers, key=lambda name: self.voice.speakers[name]["id"]))

    def ids(self, language: str, speaker: str) -> tuple[int, int]:
        """(language id, speaker id) in the models; ValueError listing the valid codes / names otherwise."""
        if language not in self.voice.languages:
            raise ValueError(
                f"Voice {self.voice.name!r} does not speak language {language!r}; "
                f"its languages are: {', '.join(self.languages)}."
            )
        if speaker not in self.voice.speakers:
            raise ValueError(
                f"Voice {self.voice.name!r} has no speaker {speaker!r}; its speakers are: {', '.join(self.speakers)}."
            )
        return int(self.voice.languages[language]), int(self.voice.speakers[speaker]["id"])

    # Stages --------------------------------------------------------------------------------------------------
    def _compiled(self):
        import tensorflow as tf

        if self._acoustic_call is None:
            # One graph for every utterance length: the towers' time loop is a tf.while_loop, slow when eager.
            signature = lambda dim: [  # noqa: E731
                {
                    "linguistic": tf.TensorSpec([1, None, dim], tf.float32),
                    "language": tf.TensorSpec([1], tf.int32),
                    "speaker": tf.TensorSpec([1], tf.int32),
                }
            ]
            acoustic, duration = self.voice.acoustic_model, self.voice.duration_model
            self._acoustic_call = tf.function(
                lambda inputs: acoustic(inputs, training=False),
                input_signature=signature(acoustic.input["linguistic"].shape[-1]),
            )
            self._duration_call = tf.function(
                lambda inputs: duration(inputs, training=False),
                input_signature=signature(duration.input["linguistic"].shape[-1]),
            )
        return self._acoustic_call, self._duration_call

    def frame_features(self, text: str, language: str, speaker: str) -> tuple[np.ndarray, np.ndarray]:
        """Normalised frame-level inputs of one sentence: ((frames, input_dim) float32, (phonemes,) durations).

        Raises `mlms_keras.frontend.espeak.FrontendInputError` for text the frontend rejects (empty text, no
        letters, letters of another script, longer than the frontend's limit).
        """
        language_id, speaker_id = self.ids(language, speaker)
        start = time.perf_counter()
        phonemes = self.voice.layout.phoneme_features(text, language)
        self.timer.add("frontend", time.perf_counter() - start)
        start = time.perf_counter()
        _, duration_call = self._compiled()
        stats = self.voice.duration_statistics
        outputs = duration_call(
            {
                "linguistic": stats.normalise_inputs(phonemes)[None],
                "language": np.array([language_id], np.int32),
                "speaker": np.array([speaker_id], np.int32),
            }
        )
        durations = frames_from_outputs(np.asarray(outputs)[0, :, 0], stats, edge_silences(phonemes, self.voice.layout))
        self.timer.add("duration", time.perf_counter() - start)
        start = time.perf_counter()
        frames = expand_to_frames(phonemes, durations)
        normalised = ((frames - self.voice.input_mean) / self.voice.input_std).astype(np.float32)
        self.timer.add("frontend", time.perf_counter() - start)
        return normalised, durations

    def acoustic_features(self, text: str, language: str, speaker: str) -> np.ndarray:
        """(frames, 49) de-normalised vocoder features of one sentence (one pass of the acoustic model)."""
        language_id, speaker_id = self.ids(language, speaker)
        frames, _ = self.frame_features(text, language, speaker)
        acoustic_call, _ = self._compiled()
        start = time.perf_counter()
        outputs = acoustic_call(
            {
                "linguistic": frames[None],
                "language": np.array([language_id], np.int32),
                "speaker": np.array([speaker_id], np.int32),
            }
        )
        vectors = np.asarray(outputs)[0] * self.voice.output_std + self.voice.output_mean
        self.timer.add("acoustic", time.perf_counter() - start)
        return vectors

    def _vocode(self, vectors: np.ndarray, name: str) -> np.ndarray:
        start = time.perf_counter()
        wave = vocoder.synthesize(vectors, self.sample_rate, postfilter_beta=self.postfilter_beta, name=name)
        self.timer.add("vocoder", time.perf_counter() - start)
        return wave

    # One pass ------------------------------------------------------------------------------------------------
    def _sentences(self, text: str) -> list[str]:
        if not isinstance(text, str) or not text.strip():
            raise espeak.FrontendInputError("text is empty: give at least one word to synthesise")
        return split_sentences(text)

    def synthesize(self, text: str, language: str, speaker: str) -> np.ndarray:
        """The waveform of `text` spoken by `speaker` in `language`.

        Args:
            text: any length; cut into sentences (`split_sentences`), each synthesised in one pass.
            language: a code of `languages`.
            speaker: a name of `speakers` (any speaker, any language).

        Returns:
            (samples,) float32 in [-1, 1] at `sample_rate`.

        Raises:
            ValueError: unknown language or speaker (listing the valid ones); `FrontendInputError` for empty or
            unsupported text (the frontend's rules).
        """
        self.ids(language, speaker)
        return np.concatenate(
            [self._synthesize_sentence(sentence, language, speaker) for sentence in self._sentences(text)]
        ).astype(np.float32)

    def _synthesize_sentence(self, sentence: str, language: str, speaker: str) -> np.ndarray:
        vectors = self.acoustic_features(sentence, language, speaker)
        return self._vocode(vectors, f"{language}:{sentence[:30]!r}")

    # Streaming -----------------------------------------------------------------------------------------------
    def _streaming(self):
        import tensorflow as tf

        from mlms_keras.models.acoustic import build_mlms_model, config_of

        if self._streaming_model is None:
            model = build_mlms_model(
                config_of(self.voice.acoustic_model),
                stateful=True,
                batch_size=1,
                jit_recurrence="always" if self.jit_streaming else "never",
                name="mlms_streaming",
            )
            model.set_weights(self.voice.acoustic_model.get_weights())
            self._streaming_model = model
            signature = [
                {
                    "linguistic": tf.TensorSpec(
                        [1, self.chunk_frames, model.input["linguistic"].shape[-1]], tf.float32
                    ),
                    "language": tf.TensorSpec([1], tf.int32),
                    "speaker": tf.TensorSpec([1], tf.int32),
                }
            ]
            self._streaming_call = tf.function(lambda inputs: model(inputs, training=False), input_signature=signature)
        return self._streaming_model, self._streaming_call

    def warm_up(self, language: str | None = None, speaker: str | None = None) -> None:
        """Trace (and for `jit_streaming`, compile) every model call once, so that the first request is fast."""
        language = language or self.languages[0]
        speaker = speaker or self.speakers[0]
        for _ in self.stream(WARM_UP_TEXT, language, speaker):
            pass
        self.synthesize(WARM_UP_TEXT, language, speaker)
        self.timer = StageTimer()

    def stream(self, text: str, language: str, speaker: str) -> Iterator[np.ndarray]:
        """Yields audio chunks ((samples,) float32) as the acoustic model produces frames.

        Concatenated, the chunks have the length of `synthesize`'s output and sound the same (module
        docstring: identical acoustic frames, WORLD pieces joined with a crossfade). Sentences are streamed one
        after the other.
        """
        self.ids(language, speaker)
        for sentence in self._sentences(text):
            yield from self._stream_sentence(sentence, language, speaker)

    def stream_acoustic_features(self, sentence: str, language: str, speaker: str) -> Iterator[tuple[np.ndarray, bool]]:
        """Yields `(features, last)`: the de-normalised vocoder features of one sentence chunk by chunk
        ((<= chunk_frames, 49) each), and whether the chunk is the sentence's last.

        The stateful acoustic model carries its LSTM state from chunk to chunk, so the concatenated chunks equal
        `acoustic_features` of the sentence (up to float rounding).
        """
        from mlms_keras.models.acoustic import reset_streaming_state

        language_id, speaker_id = self.ids(language, speaker)
        frames, _ = self.frame_features(sentence, language, speaker)
        model, call = self._streaming()
        reset_streaming_state(model)
        ids = {"language": np.array([language_id], np.int32), "speaker": np.array([speaker_id], np.int32)}
        for chunk_start in range(0, frames.shape[0], self.chunk_frames):
            chunk = frames[chunk_start : chunk_start + self.chunk_frames]
            real = chunk.shape[0]
            if real < self.chunk_frames:  # all-zero rows are padding: masked, state held, outputs dropped
                chunk = np.concatenate([chunk, np.zeros((self.chunk_frames - real, chunk.shape[1]), np.float32)])
            start = time.perf_counter()
            outputs = np.asarray(call(dict(ids, linguistic=chunk[None])))[0, :real]
            vectors = outputs * self.voice.output_std + self.voice.output_mean
            self.timer.add("acoustic", time.perf_counter() - start)
            yield vectors, chunk_start + real == frames.shape[0]

    def _stream_sentence(self, sentence: str, language: str, speaker: str) -> Iterator[np.ndarray]:
        samples_per_frame = vocoder.FRAME_PERIOD_MS / 1000.0 * self.sample_rate
        crossfade = int(round(STREAM_CROSSFADE_FRAMES * samples_per_frame))
        fade_in = 0.5 - 0.5 * np.cos(np.pi * (np.arange(crossfade) + 0.5) / crossfade)
        max_lag = int(self.sample_rate / STREAM_MIN_F0_HZ)
        vectors = np.zeros((0, vocoder.FEATURE_DIM), np.float32)
        emitted_frames = 0  # audio is final up to this frame (a multiple of 4)
        tail = None  # the previous piece's audio just past `emitted_frames`, to crossfade with
        for chunk, last in self.stream_acoustic_features(sentence, language, speaker):
            vectors = np.concatenate([vectors, chunk])
            available = vectors.shape[0]
            end_frames = available if last else (available - STREAM_LOOKAHEAD_FRAMES) // _FRAME_GRID * _FRAME_GRID
            if end_frames <= emitted_frames:
                continue
            first_frame = max(0, (emitted_frames - STREAM_CONTEXT_FRAMES) // _FRAME_GRID * _FRAME_GRID)
            wave = self._vocode(vectors[first_frame:available], f"{language}:{sentence[:30]!r}")
            offset = int(round(first_frame * samples_per_frame))
            begin = int(round(emitted_frames * samples_per_frame)) - offset
            end = len(wave) if last else int(round(end_frames * samples_per_frame)) - offset
            # The new piece's pulses have another phase than the previous piece's: shift it by the lag (within
            # one pitch period) that best lines it up with the previous tail, so the crossfade adds pulses in step.
            lag = _best_lag(tail, wave, begin, max_lag) if tail is not None else 0
            piece = np.zeros(end - begin)
            available_piece = wave[begin + lag : end + lag]
            piece[: len(available_piece)] = available_piece
            if tail is not None:
                overlap = min(len(tail), len(piece))
                piece[:overlap] = tail[:overlap] * (1.0 - fade_in[:overlap]) + piece[:overlap] * fade_in[:overlap]
            tail = wave[end + lag : end + lag + crossfade]
            emitted_frames = end_frames
            yield piece.astype(np.float32)

    # Files ---------------------------------------------------------------------------------------------------
    def synthesize_to_file(
        self, text: str, language: str, speaker: str, path: str | os.PathLike, stream: bool = True
    ) -> float:
        """Synthesise `text` into an audio file (format from the suffix: .wav, .flac, .ogg), written atomically.

        Audio is appended sentence by sentence (chunk by chunk when `stream`), so a long text needs memory for
        one sentence only.

        Returns:
            The duration of the audio in seconds.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in WRITE_FORMATS:
            raise ValueError(f"{path}: unsupported audio suffix {suffix!r}; use one of {sorted(WRITE_FORMATS)}")
        self.ids(language, speaker)
        sentences = self._sentences(text)
        file_format, subtype = WRITE_FORMATS[suffix]
        samples = 0
        with (
            atomic_output(path) as temporary,
            soundfile.SoundFile(
                temporary, "w", samplerate=self.sample_rate, channels=1, format=file_format, subtype=subtype
            ) as output,
        ):
            for sentence in sentences:
                pieces = (
                    self._stream_sentence(sentence, language, speaker)
                    if stream
                    else [self._synthesize_sentence(sentence, language, speaker)]
                )
                for piece in pieces:
                    output.write(np.asarray(piece, np.float32))
                    samples += len(piece)
        return samples / self.sample_rate
