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

**Text that is not language** (`mlms_keras.frontend.text.clean_text`): control characters (a NUL would end the
text inside espeak-ng) are removed, and emoji and symbols dropped unless `read_symbols`, each with a warning.
Pieces with no letter or digit ("...") are pauses, not sentences: they are left out without a warning.

**Bad sentences** (text the frontend refuses, such as a word in another script, or acoustic features WORLD cannot
voice, `mlms_keras.vocoder.limits`): `strict` raises; otherwise the sentence is skipped with a warning, listed in
`skipped`, and the others are spoken. When no sentence can be spoken, the first sentence's error is raised
(`synthesize_to_file` then writes nothing). In `stream` a sentence that fails after its first chunks keeps the
chunks already yielded; `synthesize_to_file` synthesises each sentence whole before writing it, so its file never
holds part of a skipped sentence.

**Streaming** (`stream`): the acoustic model is rebuilt stateful (batch 1) with the same weights; the frames of a
sentence go through it in chunks of `chunk_frames`, carrying the LSTM state (Zen & Sak 2015: unidirectional
LSTMs and a recurrent output layer need no look-ahead), so its outputs equal the one-pass outputs. The WORLD
pieces of the chunks are joined as `mlms_keras.synthesis.streaming` describes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras import vocoder
from mlms_keras.frontend import espeak
from mlms_keras.frontend.linguistic import expand_to_frames
from mlms_keras.frontend.text import clean_text, has_words, split_sentences
from mlms_keras.models.duration import edge_silences, frames_from_outputs
from mlms_keras.synthesis.streaming import (
    FRAME_GRID,
    STREAM_CONTEXT_FRAMES,
    STREAM_CROSSFADE_FRAMES,
    STREAM_LOOKAHEAD_FRAMES,
    join_streamed_pieces,
)
from mlms_keras.vocoder.audio import open_writer

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
WARM_UP_TEXT = "1, 2, 3."  # digits: every language's frontend reads them
logger = logging.getLogger(__name__)
# A sentence that fails for its own reasons (its text, or features WORLD cannot voice) is skipped when not strict.
_SENTENCE_ERRORS = (ValueError, espeak.EspeakError)


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
        read_symbols: keep emoji and symbols in the text (espeak-ng reads their names) instead of dropping them.
        strict: raise on the first sentence that cannot be spoken, instead of skipping it with a warning.

    Attributes:
        skipped: `(sentence, reason)` of each sentence the last `synthesize`, `stream` or `synthesize_to_file`
            call skipped (never filled when `strict`).

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
        read_symbols: bool = False,
        strict: bool = True,
    ) -> None:
        if chunk_frames < FRAME_GRID or chunk_frames % FRAME_GRID:
            raise ValueError(f"chunk_frames must be a positive multiple of {FRAME_GRID}, got {chunk_frames}")
        if chunk_frames <= STREAM_LOOKAHEAD_FRAMES:
            raise ValueError(f"chunk_frames must exceed the look-ahead of {STREAM_LOOKAHEAD_FRAMES} frames")
        self.voice = voice
        self.chunk_frames = int(chunk_frames)
        self.postfilter_beta = float(postfilter_beta)
        self.jit_streaming = bool(jit_streaming)
        self.read_symbols = bool(read_symbols)
        self.strict = bool(strict)
        self.skipped: list[tuple[str, str]] = []
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

    def default_speaker(self, language: str) -> str:
        """The voice's first speaker (by id) whose native language is `language`; the first speaker if none is.

        Raises `ValueError` listing the languages when the voice does not speak `language`.
        """
        self.ids(language, self.speakers[0])
        native = [name for name in self.speakers if self.voice.speakers[name].get("language") == language]
        return (native or list(self.speakers))[0]

    def _speaker(self, language: str, speaker: str | None) -> str:
        speaker = self.default_speaker(language) if speaker is None else speaker
        self.ids(language, speaker)
        return speaker

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
        """The sentences of `text` to speak, after `clean_text` (warnings logged); `skipped` starts afresh."""
        if not isinstance(text, str):
            raise espeak.FrontendInputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise espeak.FrontendInputError("text is empty: give at least one word to synthesise")
        cleaned = clean_text(text, read_symbols=self.read_symbols)
        for warning in cleaned.warnings():
            logger.warning("%s", warning)
        sentences = [sentence for sentence in split_sentences(cleaned.text) if has_words(sentence)]
        if not sentences:
            shown = cleaned.text.strip()[:40]
            raise espeak.FrontendInputError(
                f"text {shown!r} has no letters or digits: nothing to pronounce"
                if shown
                else "text is empty once control characters and symbols are removed: give at least one word"
            )
        self.skipped = []
        return sentences

    def _skip(self, sentence: str, error: Exception, spoken: int, remaining: int) -> None:
        """Raises `error` when `strict`, or when it is the last sentence and none was spoken; else records it."""
        if self.strict or (spoken == 0 and remaining == 0):
            if self.skipped:  # every sentence failed: say so, with the first reason
                first, reason = self.skipped[0]
                error_type = espeak.FrontendInputError if isinstance(error, espeak.FrontendInputError) else ValueError
                raise error_type(
                    f"none of the {len(self.skipped) + 1} sentences could be spoken; the first, {first[:40]!r}, "
                    f"failed with: {reason}"
                ) from error
            raise error
        logger.warning("skipped the sentence %r: %s", sentence[:60], error)
        self.skipped.append((sentence, str(error)))

    def synthesize(self, text: str, language: str, speaker: str | None = None) -> np.ndarray:
        """The waveform of `text` spoken by `speaker` in `language`.

        Args:
            text: any length; cleaned (module docstring), cut into sentences (`split_sentences`), each
                synthesised in one pass; a bad sentence is skipped with a warning unless `strict`.
            language: a code of `languages`.
            speaker: a name of `speakers` (any speaker, any language); None: `default_speaker(language)`.

        Returns:
            (samples,) float32 in [-1, 1] at `sample_rate`.

        Raises:
            ValueError: unknown language or speaker (listing the valid ones); `FrontendInputError` for empty or
            unsupported text (the frontend's rules); features WORLD cannot voice (`mlms_keras.vocoder.limits`).
        """
        speaker = self._speaker(language, speaker)
        sentences = self._sentences(text)
        waves = []
        for index, sentence in enumerate(sentences):
            try:
                waves.append(self._synthesize_sentence(sentence, language, speaker))
            except _SENTENCE_ERRORS as error:
                self._skip(sentence, error, len(waves), len(sentences) - index - 1)
        return np.concatenate(waves).astype(np.float32)

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

    def stream(self, text: str, language: str, speaker: str | None = None) -> Iterator[np.ndarray]:
        """Yields audio chunks ((samples,) float32) as the acoustic model produces frames.

        Concatenated, the chunks have the length of `synthesize`'s output and sound the same (module
        docstring: identical acoustic frames, WORLD pieces joined with a crossfade). Sentences are streamed one
        after the other; text, speaker and bad sentences are handled as in `synthesize`.
        """
        speaker = self._speaker(language, speaker)
        sentences = self._sentences(text)
        spoken = 0
        for index, sentence in enumerate(sentences):
            try:
                for piece in self._stream_sentence(sentence, language, speaker):
                    spoken += 1
                    yield piece
            except _SENTENCE_ERRORS as error:
                self._skip(sentence, error, spoken, len(sentences) - index - 1)

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
        name = f"{language}:{sentence[:30]!r}"
        chunks = self.stream_acoustic_features(sentence, language, speaker)
        yield from join_streamed_pieces(chunks, lambda vectors: self._vocode(vectors, name), self.sample_rate)

    # Files ---------------------------------------------------------------------------------------------------
    def synthesize_to_file(
        self,
        text: str,
        language: str,
        speaker: str | None,
        path: str | os.PathLike,
        stream: bool = True,
    ) -> float:
        """Synthesise `text` into an audio file (format from the suffix: .wav, .flac, .ogg), written atomically.

        Audio is appended sentence by sentence (each synthesised whole, streamed chunk by chunk when `stream`),
        so a long text needs memory for one sentence only. Text, speaker (None: `default_speaker`) and bad
        sentences are handled as in `synthesize`; on any error the file is not written (an old one stays).

        Returns:
            The duration of the audio in seconds.

        Raises:
            ValueError: as `synthesize`, or an unsupported suffix; `IsADirectoryError` for a folder; `OSError` for
            a folder that cannot be written or a write that fails (a full disk).
        """
        speaker = self._speaker(language, speaker)
        sentences = self._sentences(text)
        samples = spoken = 0
        with open_writer(path, self.sample_rate) as output:
            for index, sentence in enumerate(sentences):
                try:
                    if stream:
                        pieces = list(self._stream_sentence(sentence, language, speaker))
                    else:
                        pieces = [self._synthesize_sentence(sentence, language, speaker)]
                except _SENTENCE_ERRORS as error:
                    self._skip(sentence, error, spoken, len(sentences) - index - 1)
                    continue
                spoken += 1
                for piece in pieces:
                    output.write(np.asarray(piece, np.float32))
                    samples += len(piece)
        return samples / self.sample_rate
