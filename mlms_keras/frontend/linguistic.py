"""Linguistic features of Li & Zen (2016), section 3: phoneme rows, alignments, frame expansion.

**Phoneme rows.** `phoneme_rows` turns an analysed utterance (`mlms_keras.frontend.espeak.analyze`) into one row
per phoneme with its named structure and stress values (`STRUCTURE_FEATURE_NAMES`, `STRESS_FEATURE_NAMES`):

- syllable, word and phrase structure (HTS style, positions counted from 1, forward and backward): phonemes in the
  syllable and the phoneme's position in it, syllables in the word and the syllable's position in the word and in
  the phrase, words in the phrase and the word's position, phrases in the utterance and the phrase's position,
  stressed syllables before/after in the phrase, sizes of the neighbouring word and phrase, and the kind of phrase
  ending (statement, question, continuation, exclamation, none);
- stress of the current, previous and next syllable, and whether espeak-ng lengthened the phoneme.

`mlms_keras.frontend.layout.FeatureLayout` turns rows into vectors (quinphone identities, articulatory features,
zero padding over the language universe).

**Frame level** (section 3): each phoneme's row is repeated for its frames (5 ms each) and extended with 3
coarse-coded positions of the frame within the phoneme and 1 duration feature (the phoneme's duration in frames).
Coarse coding follows Merlin (Wu et al. 2016; Zen & Sak 2015's "coarse-coded position"): three Gaussians with
means 0, 0.5 and 1 and standard deviation 0.4, evaluated at the frame's relative position `r = (i + 0.5) / d` for
frame `i` of a `d`-frame phoneme (Merlin samples `r = i / d`; we use frame centres so the coding is symmetric in
time).

**Silences and pauses.** Text analysis gives `sil` at both ends and `pau` between phrases (`rows_with_pauses`).
When durations come from an alignment (`features_for_alignment`), the alignment decides: each run of silence
segments becomes one `sil` (at the ends) or `pau` (inside) row, and a frontend phrase break without a silence
segment gets none. Structure features of `sil`/`pau` rows are zero; their quinphone context and identity are
filled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras.frontend import espeak
from mlms_keras.frontend.labels import Segment, read_alignment, segments_to_frames

if TYPE_CHECKING:  # layout.py imports this module; the layout is only an annotation here
    from mlms_keras.frontend.layout import FeatureLayout

__all__ = [
    "COARSE_CODING_MEANS",
    "COARSE_CODING_STD",
    "FRAME_FEATURE_NAMES",
    "FRAME_PERIOD_MS",
    "PAUSE",
    "PHRASE_ENDINGS",
    "SILENCE",
    "SILENCE_LABELS",
    "STRESS_FEATURE_NAMES",
    "STRUCTURE_FEATURE_NAMES",
    "AlignedFeatures",
    "AlignmentMismatchError",
    "PhonemeRow",
    "coarse_coded_positions",
    "expand_to_frames",
    "features_for_alignment",
    "features_for_label_file",
    "is_silence_label",
    "normalise_label",
    "phoneme_rows",
    "rows_with_pauses",
]

FRAME_PERIOD_MS = 5.0
SILENCE = "sil"
PAUSE = "pau"
COARSE_CODING_MEANS = (0.0, 0.5, 1.0)
COARSE_CODING_STD = 0.4
FRAME_FEATURE_NAMES = (
    "frame_position_coarse_0",
    "frame_position_coarse_1",
    "frame_position_coarse_2",
    "phoneme_duration_frames",
)

# Labels that mean "no phoneme here" in our labels and in common aligners (HTS/Merlin, MFA, Kaldi).
SILENCE_LABELS = frozenset({"sil", "pau", "sp", "spn", "sil0", "h#", "#", "_", "", "<sil>", "silence", "<eps>"})

PHRASE_ENDINGS = ("statement", "question", "continuation", "exclamation", "none")

# The names of the values `phoneme_rows` fills; they are defined here, beside the code that computes them, and
# `mlms_keras.frontend.layout.common_feature_names` puts them first in every layout.
STRUCTURE_FEATURE_NAMES = (
    "phoneme_position_in_syllable_forward",
    "phoneme_position_in_syllable_backward",
    "phonemes_in_syllable",
    "syllable_position_in_word_forward",
    "syllable_position_in_word_backward",
    "syllables_in_word",
    "syllable_position_in_phrase_forward",
    "syllable_position_in_phrase_backward",
    "syllables_in_phrase",
    "stressed_syllables_before_in_phrase",
    "stressed_syllables_after_in_phrase",
    "word_position_in_phrase_forward",
    "word_position_in_phrase_backward",
    "words_in_phrase",
    "syllables_in_previous_word",
    "syllables_in_next_word",
    "phrase_position_in_utterance_forward",
    "phrase_position_in_utterance_backward",
    "phrases_in_utterance",
    "words_in_previous_phrase",
    "words_in_next_phrase",
    "syllables_in_utterance",
    "words_in_utterance",
) + tuple(f"phrase_ending={ending}" for ending in PHRASE_ENDINGS)

# Stress and quantity (espeak-ng's length mark, e.g. Italian geminates).
STRESS_FEATURE_NAMES = (
    "syllable_stress=primary",
    "syllable_stress=secondary",
    "previous_syllable_stressed",
    "next_syllable_stressed",
    "phoneme_lengthened",
)


class AlignmentMismatchError(ValueError):
    """An alignment's phones do not match the frontend's phonemes for the same text."""


@dataclass
class PhonemeRow:
    """One row of the phoneme-level sequence before it becomes a vector.

    Attributes:
        symbol: espeak-ng mnemonic, or `"sil"` / `"pau"`.
        ipa: the phoneme's IPA (`""` for `sil`/`pau`).
        values: named structure and stress feature values (empty for `sil`/`pau`).
    """

    symbol: str
    ipa: str
    values: dict[str, float]

    @property
    def is_silence(self) -> bool:
        """True for the `sil` and `pau` rows."""
        return self.symbol in (SILENCE, PAUSE)


def _phrase_ending(terminator: str) -> str:
    if "?" in terminator:
        return "question"
    if "!" in terminator:
        return "exclamation"
    if any(character in terminator for character in ",;:"):
        return "continuation"
    if any(character in terminator for character in ".…"):
        return "statement"
    return "none"


def phoneme_rows(utterance: espeak.Utterance) -> list[PhonemeRow]:
    """The utterance's phonemes (no `sil`/`pau`) with their structure and stress feature values."""
    rows = []
    phrases = utterance.phrases
    syllables_in_utterance = sum(len(word.syllables) for word in utterance.words)
    words_in_utterance = len(utterance.words)
    for phrase_index, phrase in enumerate(phrases):
        phrase_syllables = [syllable for word in phrase.words for syllable in word.syllables]
        stressed_flags = [syllable.stress > 0 for syllable in phrase_syllables]
        ending = _phrase_ending(phrase.terminator)
        syllable_in_phrase = 0
        for word_index, word in enumerate(phrase.words):
            for syllable_index, syllable in enumerate(word.syllables):
                previous_stress = phrase_syllables[syllable_in_phrase - 1].stress if syllable_in_phrase > 0 else 0
                next_stress = (
                    phrase_syllables[syllable_in_phrase + 1].stress
                    if syllable_in_phrase + 1 < len(phrase_syllables)
                    else 0
                )
                for phoneme_index, phoneme in enumerate(syllable.phonemes):
                    values = {
                        "phoneme_position_in_syllable_forward": phoneme_index + 1,
                        "phoneme_position_in_syllable_backward": len(syllable.phonemes) - phoneme_index,
                        "phonemes_in_syllable": len(syllable.phonemes),
                        "syllable_position_in_word_forward": syllable_index + 1,
                        "syllable_position_in_word_backward": len(word.syllables) - syllable_index,
                        "syllables_in_word": len(word.syllables),
                        "syllable_position_in_phrase_forward": syllable_in_phrase + 1,
                        "syllable_position_in_phrase_backward": len(phrase_syllables) - syllable_in_phrase,
                        "syllables_in_phrase": len(phrase_syllables),
                        "stressed_syllables_before_in_phrase": sum(stressed_flags[:syllable_in_phrase]),
                        "stressed_syllables_after_in_phrase": sum(stressed_flags[syllable_in_phrase + 1 :]),
                        "word_position_in_phrase_forward": word_index + 1,
                        "word_position_in_phrase_backward": len(phrase.words) - word_index,
                        "words_in_phrase": len(phrase.words),
                        "syllables_in_previous_word": (
                            len(phrase.words[word_index - 1].syllables) if word_index > 0 else 0
                        ),
                        "syllables_in_next_word": (
                            len(phrase.words[word_index + 1].syllables) if word_index + 1 < len(phrase.words) else 0
                        ),
                        "phrase_position_in_utterance_forward": phrase_index + 1,
                        "phrase_position_in_utterance_backward": len(phrases) - phrase_index,
                        "phrases_in_utterance": len(phrases),
                        "words_in_previous_phrase": len(phrases[phrase_index - 1].words) if phrase_index > 0 else 0,
                        "words_in_next_phrase": (
                            len(phrases[phrase_index + 1].words) if phrase_index + 1 < len(phrases) else 0
                        ),
                        "syllables_in_utterance": syllables_in_utterance,
                        "words_in_utterance": words_in_utterance,
                        f"phrase_ending={ending}": 1,
                        "syllable_stress=primary": int(syllable.stress == 1),
                        "syllable_stress=secondary": int(syllable.stress == 2),
                        "previous_syllable_stressed": int(previous_stress > 0),
                        "next_syllable_stressed": int(next_stress > 0),
                        "phoneme_lengthened": int(phoneme.lengthened),
                    }
                    rows.append(PhonemeRow(phoneme.symbol, phoneme.ipa, values))
                syllable_in_phrase += 1
    return rows


def rows_with_pauses(utterance: espeak.Utterance) -> list[PhonemeRow]:
    """Rows for synthesis from text: `sil`, the phonemes with `pau` between phrases, `sil`."""
    rows = phoneme_rows(utterance)
    phrase_lengths = [sum(len(word.phonemes) for word in phrase.words) for phrase in utterance.phrases]
    result = [PhonemeRow(SILENCE, "", {})]
    start = 0
    for index, length in enumerate(phrase_lengths):
        if index > 0:
            result.append(PhonemeRow(PAUSE, "", {}))
        result.extend(rows[start : start + length])
        start += length
    result.append(PhonemeRow(SILENCE, "", {}))
    return result


@dataclass
class AlignedFeatures:
    """Phoneme-level features of an aligned utterance.

    Attributes:
        phoneme_features: `(phonemes, D_phone)` float32, `sil`/`pau` rows included as the alignment has them.
        durations_frames: `(phonemes,)` int32, frames of 5 ms per row; sums to the alignment's frame count.
        symbols: the row symbols (espeak-ng mnemonics, `"sil"`, `"pau"`).
        start_frame: frame index of the first row's start (0 when the alignment starts at time 0).
    """

    phoneme_features: np.ndarray
    durations_frames: np.ndarray
    symbols: list[str]
    start_frame: int = 0


_FULL_CONTEXT = re.compile(r"^[^\^]*\^[^-]*-(.+?)\+")


def normalise_label(label: str) -> str:
    """An alignment label -> a phoneme symbol: strips stress marks, takes the centre of HTS full-context labels."""
    label = label.strip()
    match = _FULL_CONTEXT.match(label)
    if match:
        label = match.group(1)
    return label.lstrip("'ˈˌ,%=")


def is_silence_label(label: str) -> bool:
    """True for silence/pause labels of our corpora and common aligners (`sil`, `pau`, `sp`, `spn`, empty, ...)."""
    symbol = normalise_label(label)
    return symbol.lower() in SILENCE_LABELS or symbol.startswith("_")


def features_for_alignment(
    text: str,
    language: str,
    segments: Iterable[Segment],
    layout: FeatureLayout,
    utterance_id: str = "<utterance>",
    frame_period_ms: float = FRAME_PERIOD_MS,
    match: str = "exact",
) -> AlignedFeatures:
    """Phoneme-level features and durations (in frames) for a corpus utterance with a phone alignment.

    Args:
        text: the utterance text.
        language: its language code.
        segments: phone segments in time order (`mlms_keras.frontend.labels.Segment`, e.g. from
            `mlms_keras.frontend.labels.read_hts_labels`), silences included.
        layout: the feature layout to build with.
        utterance_id: named in errors.
        frame_period_ms: frame shift (5 ms).
        match: `"exact"`: every non-silence label must equal the frontend's phoneme (espeak-ng mnemonic, as
            in the teacher corpus); `"count"`: only the number of phones must agree (alignments from other
            tools with other phone sets, used in order).

    Returns:
        `AlignedFeatures`. Silence segments (`is_silence_label`) become `sil`/`pau` rows (consecutive ones
        merged); a frontend phrase break without a silence segment gets no pause row. A phoneme shorter than
        half a frame may get 0 frames: it keeps its row so the context stays right. Tone phonemes (kind
        `"tone"`) may be in the labels (zero-length segments, as the teacher corpus and `mlms align` write
        them) or left out (other aligners, TextGrids): left out, each gets its row after its vowel with 0
        frames.

    Raises:
        AlignmentMismatchError: the label phones and the frontend's phonemes differ; the message names the
            utterance, the first differing position and both phone sequences around it.
    """
    if match not in ("exact", "count"):
        raise ValueError(f"match must be 'exact' or 'count', got {match!r}")
    try:
        utterance = espeak.analyze(text, language)
    except espeak.FrontendInputError as error:
        raise espeak.FrontendInputError(f"{utterance_id}: {error}") from error
    frontend_rows = phoneme_rows(utterance)
    frames = segments_to_frames(list(segments), frame_period_ms)
    if not frames:
        raise AlignmentMismatchError(f"{utterance_id}: the alignment has no segments")
    labelled = [(start, end, normalise_label(label), is_silence_label(label)) for start, end, label in frames]
    label_phones = [symbol for _, _, symbol, silent in labelled if not silent]
    # Tone phonemes span no audio: alignments from other tools (and TextGrids, which cannot hold zero-length
    # intervals) leave them out. Then the labels are matched against the spoken phonemes and each tone row is
    # put back after its vowel with 0 frames, as the teacher corpus's labels have it.
    tone_flags = [phoneme.kind == espeak.TONE_KIND for phoneme in utterance.phonemes]
    spoken_rows = [index for index, is_tone in enumerate(tone_flags) if not is_tone]
    tones_left_out = len(spoken_rows) < len(frontend_rows) and len(label_phones) == len(spoken_rows)
    if not tones_left_out:
        spoken_rows = list(range(len(frontend_rows)))
    frontend_phones = [frontend_rows[index].symbol for index in spoken_rows]
    differing = (
        (i for i, (a, b) in enumerate(zip(label_phones, frontend_phones)) if a != b) if match == "exact" else iter(())
    )
    mismatch = next(differing, None)
    if mismatch is None and len(label_phones) != len(frontend_phones):
        mismatch = min(len(label_phones), len(frontend_phones))
    if mismatch is not None:
        window = slice(max(0, mismatch - 3), mismatch + 4)
        raise AlignmentMismatchError(
            f"{utterance_id}: the alignment has {len(label_phones)} phones but the frontend ({language}) gives "
            f"{len(frontend_phones)} for {text[:60]!r}; first difference at phone {mismatch}: labels "
            f"{label_phones[window]} vs frontend {frontend_phones[window]}. Re-align the utterance with the "
            "frontend's phonemes, fix its text, or use match='count' for another phone set; or skip it."
        )
    rows, durations = [], []
    phone_number = 0
    last_index = len(labelled) - 1
    for index, (start, end, _symbol, silent) in enumerate(labelled):
        if silent:
            kind = SILENCE if index == 0 or index == last_index else PAUSE
            if rows and rows[-1].is_silence:
                durations[-1] += end - start
                if kind == SILENCE:
                    rows[-1] = PhonemeRow(SILENCE, "", {})
            elif end > start:
                rows.append(PhonemeRow(kind, "", {}))
                durations.append(end - start)
        else:
            row_index = spoken_rows[phone_number]
            rows.append(frontend_rows[row_index])
            durations.append(end - start)
            phone_number += 1
            next_spoken = spoken_rows[phone_number] if phone_number < len(spoken_rows) else len(frontend_rows)
            for tone_index in range(row_index + 1, next_spoken):  # tones left out of the labels: 0 frames
                rows.append(frontend_rows[tone_index])
                durations.append(0)
    return AlignedFeatures(
        layout.rows_to_matrix(rows, language),
        np.asarray(durations, np.int32),
        [row.symbol for row in rows],
        start_frame=labelled[0][0],
    )


def features_for_label_file(
    text: str,
    language: str,
    alignment_path: str | Path,
    layout: FeatureLayout,
    utterance_id: str | None = None,
    match: str = "exact",
    tier: str | None = None,
) -> AlignedFeatures:
    """`features_for_alignment` for an alignment file: HTS `.lab` or Praat `.TextGrid` (phone tier `tier`).

    Errors name the utterance (default: the file name without suffix).
    """
    utterance_id = utterance_id or Path(alignment_path).stem
    segments = read_alignment(alignment_path, tier=tier)
    return features_for_alignment(text, language, segments, layout, utterance_id, match=match)


def coarse_coded_positions(duration_frames: int) -> np.ndarray:
    """The 3 coarse-coded positions of each frame in a phoneme of `duration_frames` frames: `(frames, 3)`.

    Value `k` of frame `i` is the Gaussian density `N(r; mean_k, 0.4^2)` at `r = (i + 0.5) / duration_frames`,
    with means 0, 0.5, 1 (Merlin's coarse coding; see the module docstring).
    """
    relative = (np.arange(duration_frames, dtype=np.float64) + 0.5) / max(duration_frames, 1)
    means = np.asarray(COARSE_CODING_MEANS)
    density = np.exp(-0.5 * ((relative[:, None] - means[None, :]) / COARSE_CODING_STD) ** 2)
    return (density / (COARSE_CODING_STD * math.sqrt(2 * math.pi))).astype(np.float32)


def expand_to_frames(phoneme_features: np.ndarray, durations_frames: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frame-level features (section 3): `(phonemes, D)` and durations -> `(frames, D + 4)`.

    Each phoneme's row is repeated for its frames and followed by the frame's 3 coarse-coded positions in
    the phoneme and the phoneme's duration in frames. Phonemes with 0 frames contribute no frames.

    Raises:
        ValueError: shapes disagree, or a duration is negative or not a whole number.
    """
    phoneme_features = np.asarray(phoneme_features, np.float32)
    durations = np.asarray(durations_frames)
    if phoneme_features.ndim != 2:
        raise ValueError(f"phoneme_features must be (phonemes, features), got shape {phoneme_features.shape}")
    if durations.shape != (phoneme_features.shape[0],):
        raise ValueError(
            f"durations_frames must have one entry per phoneme ({phoneme_features.shape[0]}), "
            f"got shape {durations.shape}"
        )
    if durations.size and (np.any(durations < 0) or np.any(durations != np.round(durations))):
        raise ValueError("durations_frames must be non-negative whole numbers of frames")
    durations = durations.astype(np.int64)
    total = int(durations.sum())
    frames = np.empty((total, phoneme_features.shape[1] + 4), np.float32)
    frames[:, : phoneme_features.shape[1]] = np.repeat(phoneme_features, durations, axis=0)
    position = 0
    for duration in durations:
        if duration:
            frames[position : position + duration, -4:-1] = coarse_coded_positions(int(duration))
            frames[position : position + duration, -1] = duration
            position += duration
    return frames
