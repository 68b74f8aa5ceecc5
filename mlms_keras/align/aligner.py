"""Forced alignment of one utterance: `align(wave, sample_rate, text, language) -> Alignment`.

Steps: the frontend's phones of the text (`mlms_keras.align.phones`), log-mel frames (`mlms_keras.align.features`),
the acoustic model's feature and silence posteriors (`mlms_keras.align.model`), emission scores and the Viterbi
path with optional silences (`mlms_keras.align.viterbi`), then segments in seconds. A frame boundary between
frames `i - 1` and `i` is at `(i - 0.5) * 5 ms`; the first segment starts at 0 and the last ends at the end of the
audio.

The written labels (`write_alignment`): an HTS label file (`sil` at the ends, `pau` between words, the phones as
espeak-ng mnemonics, tones as zero-length segments after their vowel, as in the teacher corpus), and a Praat
TextGrid with a `phones` and a `words` tier (tones left out: TextGrid intervals cannot be empty).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from praatio import textgrid as praatio_textgrid
from praatio.data_classes.interval_tier import IntervalTier

from mlms_keras.align.features import log_mel, normalise, to_feature_rate
from mlms_keras.align.model import AlignerModel
from mlms_keras.align.phones import AlignmentPhones, phones_for_text
from mlms_keras.align.training import FRAME_S
from mlms_keras.align.viterbi import EmissionSettings, PathUnits, emission_scores, forced_align, free_scores
from mlms_keras.frontend.labels import Segment, write_hts_labels
from mlms_keras.utils.fileio import atomic_output

__all__ = [
    "Alignment",
    "SilentAudioError",
    "align",
    "align_posteriors",
    "align_prepared",
    "prepare_input",
    "write_alignment",
]

#: Peak level (full scale 1.0) below which audio counts as silent (-60 dBFS).
SILENT_PEAK = 1e-3
#: Shortest audio per phone accepted (seconds): below it the transcript cannot belong to the audio.
MIN_SECONDS_PER_PHONE = 0.02


class SilentAudioError(ValueError):
    """The audio is empty or silent: there is nothing to align."""


@dataclasses.dataclass
class Alignment:
    """The alignment of one utterance.

    Attributes:
        phones: phone-tier segments in seconds: `sil`, the phones (espeak-ng mnemonics), `pau` between words,
            and each tone as a zero-length segment at the end of its vowel.
        words: word-tier segments (pauses between words are gaps).
        score: mean per-frame emission of the path minus the best free score (<= 0; near 0 is a good fit).
        duration_s: length of the audio in seconds.
        path: the Viterbi result (`PathUnits`, frame units).
    """

    phones: list
    words: list
    score: float
    duration_s: float
    path: PathUnits


def prepare_input(wave: np.ndarray, sample_rate: int, text: str, language: str, name: str = "utterance"):
    """The phones and the normalised log-mel frames of an utterance: `(AlignmentPhones, (frames, 40) float32)`.

    Raises:
        SilentAudioError: empty or silent audio.
        mlms_keras.frontend.espeak.FrontendInputError: a text the frontend refuses.
        ValueError: a sample rate below 16 kHz, a multichannel wave, a text without phones, audio far too short
            for its phones (under `MIN_SECONDS_PER_PHONE` each).
    """
    wave = np.asarray(wave, np.float32)
    if wave.size == 0 or not np.all(np.isfinite(wave)) or float(np.max(np.abs(wave))) < SILENT_PEAK:
        raise SilentAudioError(f"{name}: the audio is empty or silent (peak below -60 dBFS); nothing to align.")
    phones = phones_for_text(text, language)
    duration_s = wave.size / float(sample_rate)
    if duration_s < MIN_SECONDS_PER_PHONE * len(phones):
        raise ValueError(
            f"{name}: audio far too short for its text: {duration_s:.2f} s for {len(phones)} phones (at least "
            f"{MIN_SECONDS_PER_PHONE * 1000:.0f} ms each); check that the transcript belongs to this audio."
        )
    wave16 = to_feature_rate(wave, sample_rate, name=name)
    return phones, normalise(log_mel(wave16))


def _segments(phones: AlignmentPhones, path: PathUnits, num_frames: int, duration_s: float):
    def time_of(frame):
        return 0.0 if frame == 0 else duration_s if frame >= num_frames else min(duration_s, (frame - 0.5) * FRAME_S)

    phone_segments, words = [], []
    word_span: dict[int, list[float]] = {}
    for kind, index, start, end in path.units:
        start_s, end_s = time_of(start), time_of(end)
        if kind == "phone":
            phone_segments.append(Segment(start_s, end_s, phones.symbols[index]))
            phone_segments.extend(Segment(end_s, end_s, tone) for tone in phones.tones_after[index])
            span = word_span.setdefault(int(phones.word_index[index]), [start_s, end_s])
            span[1] = end_s
        else:
            phone_segments.append(Segment(start_s, end_s, kind))
    for number, (start_s, end_s) in sorted(word_span.items()):
        words.append(Segment(start_s, end_s, phones.words[number]))
    return phone_segments, words


def align_prepared(
    phones: AlignmentPhones,
    features: np.ndarray,
    duration_s: float,
    model: AlignerModel,
    settings: EmissionSettings | None = None,
) -> Alignment:
    """`align` after `prepare_input`: posteriors, the Viterbi path and the segments."""
    settings = settings or EmissionSettings.from_dict(model.metadata.get("emission"))
    return align_posteriors(phones, model.posteriors(features), duration_s, settings)


def align_posteriors(
    phones: AlignmentPhones, posteriors: np.ndarray, duration_s: float, settings: EmissionSettings
) -> Alignment:
    """The Viterbi path and segments from the model's `(frames, outputs)` posteriors (`AlignerModel.posteriors`)."""
    scores = emission_scores(posteriors, phones, settings)
    path = forced_align(scores, phones, settings)
    score = float(np.mean(path.path_scores - free_scores(scores)))
    phone_segments, words = _segments(phones, path, posteriors.shape[0], duration_s)
    return Alignment(phone_segments, words, score, duration_s, path)


def align(
    wave: np.ndarray,
    sample_rate: int,
    text: str,
    language: str,
    model: AlignerModel | None = None,
    settings: EmissionSettings | None = None,
) -> Alignment:
    """Align a transcript to its audio.

    Args:
        wave: `(samples,)` float audio in [-1, 1], mono.
        sample_rate: Hz, at least 16 000.
        text: what is said.
        language: its language code (`mlms languages`).
        model: the acoustic model (default: the shipped multilingual aligner, `load_aligner()`).
        settings: emission and pause settings (default: the model's own).

    Returns:
        `Alignment` (phone and word segments in seconds, the score).

    Raises:
        SilentAudioError: empty or silent audio.
        mlms_keras.frontend.espeak.FrontendInputError: a text the frontend refuses.
        ValueError: a sample rate below 16 kHz, or audio far too short for its phones.

    Example:
    >>> wave, rate = vocoder.audio.load(pysptk.util.example_audio_file())      # doctest: +SKIP
    >>> text = "And you always want to see it in the superlative degree."        # doctest: +SKIP
    >>> [(round(s.start_s, 3), s.label) for s in align(wave, rate, text, "en-us").words][:2]  # doctest: +SKIP
    """
    if model is None:
        from mlms_keras.align.shipped import load_aligner

        model = load_aligner()
    phones, features = prepare_input(wave, sample_rate, text, language)
    duration_s = len(wave) / float(sample_rate)
    return align_prepared(phones, features, duration_s, model, settings)


def write_alignment(alignment: Alignment, lab_path: str | os.PathLike, textgrid_path: str | os.PathLike | None) -> None:
    """Write the HTS label file and (unless `None`) a two-tier TextGrid (`phones`, `words`), each atomically.

    The TextGrid is written first, so an existing label file means both are complete (the corpus path resumes on
    it).
    """
    if textgrid_path is not None:
        end_s = alignment.duration_s
        phones = [(s.start_s, s.end_s, s.label) for s in alignment.phones if s.end_s > s.start_s]
        words = [(s.start_s, s.end_s, s.label) for s in alignment.words if s.end_s > s.start_s]
        grid = praatio_textgrid.Textgrid()
        grid.addTier(IntervalTier("phones", phones, 0.0, end_s))
        grid.addTier(IntervalTier("words", words, 0.0, end_s))
        with atomic_output(Path(textgrid_path)) as temporary:
            grid.save(str(temporary), format="long_textgrid", includeBlankSpaces=True, minimumIntervalLength=None)
    write_hts_labels(lab_path, alignment.phones)
