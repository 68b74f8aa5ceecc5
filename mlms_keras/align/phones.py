"""What the aligner aligns: the frontend's phonemes of a text, with their words and articulatory targets.

Phones come from the espeak-ng frontend (`mlms_keras.frontend.espeak.analyze`), so the labels the aligner writes
always match what `mlms_keras.frontend.linguistic.features_for_label_file` expects. Tone phonemes (kind `"tone"`,
tone languages) span no audio: they are not aligned, but carried with the phone before them and written as
zero-length segments at its end (the teacher corpus's convention).

Each phone's acoustic description is its panphon articulatory vector (`mlms_keras.frontend.layout`): 24 values in
{-1, 0, +1} (a diphthong or affricate gets the mean of its parts). The acoustic model predicts, per frame, the
probability that each feature is `+`, and the probability of silence; a phone's emission score compares the
two (`mlms_keras.align.emissions`). That makes phones the model never saw, in languages it never heard, scoreable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlms_keras.frontend import espeak
from mlms_keras.frontend.layout import articulatory_feature_names, articulatory_features

__all__ = ["NUM_FEATURES", "AlignmentPhones", "phones_for_text", "target_matrix"]

_PUNCTUATION = ".,;:!?¿¡…«»\"'“”„()[]{}-–—"
#: panphon articulatory features per phone.
NUM_FEATURES = len(articulatory_feature_names())


@dataclass(frozen=True)
class AlignmentPhones:
    """The phones of one text, in order, as the aligner sees them.

    Attributes:
        symbols: espeak-ng mnemonics of the spoken phones (no tones, no pauses).
        ipa: their IPA.
        word_index: `(phones,)` int: the word each phone belongs to (0-based, over the utterance).
        words: the words' written forms as the frontend saw them: the text's whitespace tokens when their number
            matches the frontend's words, else `word1`, `word2`, ...
        tones_after: per phone, the tone phonemes that follow it (empty tuples in most languages).
        targets: `(phones, NUM_FEATURES)` float32 in [0, 1]: the probability each feature is `+`.
        target_mask: `(phones, NUM_FEATURES)` float32: 1 where the phone specifies the feature (value not 0).
    """

    symbols: tuple[str, ...]
    ipa: tuple[str, ...]
    word_index: np.ndarray
    words: tuple[str, ...]
    tones_after: tuple[tuple[str, ...], ...]
    targets: np.ndarray
    target_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def word_starts(self) -> np.ndarray:
        """`(phones,)` bool: the phone starts a word (a pause may come before it)."""
        starts = np.ones(len(self.symbols), bool)
        starts[1:] = self.word_index[1:] != self.word_index[:-1]
        return starts


def target_matrix(ipa_symbols) -> tuple[np.ndarray, np.ndarray]:
    """Articulatory targets of IPA strings: `(targets, mask)`, both `(phones, NUM_FEATURES)` float32.

    `targets = (value + 1) / 2` (panphon's -1/+1 as 0/1, means of multi-segment phones in between), `mask` is 1
    where the value is not 0 (0 = unspecified, or unknown to panphon).
    """
    values = np.zeros((len(ipa_symbols), NUM_FEATURES), np.float32)
    for row, ipa in enumerate(ipa_symbols):
        if ipa:
            vector, known = articulatory_features(ipa)
            if known:
                values[row] = vector
    return (values + 1.0) / 2.0, (np.abs(values) > 1e-6).astype(np.float32)


def phones_for_text(text: str, language: str) -> AlignmentPhones:
    """The spoken phones of `text` in `language` (see the module docstring).

    Raises:
        mlms_keras.frontend.espeak.FrontendInputError: the frontend refuses the text (empty, wrong script, ...).
        ValueError: the text has no spoken phone.
    """
    utterance = espeak.analyze(text, language)
    symbols, ipa, word_index, tones = [], [], [], []
    for number, word in enumerate(utterance.words):
        for phoneme in word.phonemes:
            if phoneme.kind == espeak.TONE_KIND:
                if tones:  # a tone belongs to the vowel before it
                    tones[-1] = tones[-1] + (phoneme.symbol,)
                continue
            symbols.append(phoneme.symbol)
            ipa.append(phoneme.ipa)
            word_index.append(number)
            tones.append(())
    if not symbols:
        raise ValueError(f"the frontend ({language}) gives no phonemes for {text[:60]!r}; nothing to align.")
    tokens = [token.strip(_PUNCTUATION) for token in text.split()]
    tokens = [token for token in tokens if token]
    count = len(utterance.words)
    words = tuple(tokens) if len(tokens) == count else tuple(f"word{number + 1}" for number in range(count))
    targets, mask = target_matrix(ipa)
    return AlignmentPhones(
        tuple(symbols), tuple(ipa), np.asarray(word_index, np.int64), words, tuple(tones), targets, mask
    )
