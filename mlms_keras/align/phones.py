"""What the aligner aligns: the frontend's phonemes of a text, with their words and articulatory targets.

Phones come from the espeak-ng frontend (`mlms_keras.frontend.espeak.analyze`), so the labels the aligner writes
always match what `mlms_keras.frontend.linguistic.features_for_label_file` expects. Tone phonemes (kind `"tone"`,
tone languages) span no audio: they are not aligned, but carried with the phone before them and written as
zero-length segments at its end (the teacher corpus's convention).

Each phone's acoustic description is its panphon articulatory vector (`mlms_keras.frontend.layout`): 24 values in
{-1, 0, +1} (a diphthong or affricate gets the mean of its parts). The acoustic model predicts, per frame, the
probability that each feature is `+`, and the probability of silence; a phone's emission score compares the
two (`mlms_keras.align.viterbi`). That makes phones the model never saw, in languages it never heard, scoreable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlms_keras.frontend import espeak
from mlms_keras.frontend.layout import articulatory_feature_names, articulatory_features

__all__ = ["NUM_FEATURES", "AlignmentPhones", "mnemonic_ipa", "phones_for_text", "target_matrix"]

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
        words: the words' written forms: the text's whitespace tokens (punctuation stripped) when their number
            matches the frontend's words, else each word's phones (espeak-ng merges "want to", splits numbers).
        tones_after: per phone, the tone phonemes that follow it (empty tuples in most languages).
        targets: `(phones, NUM_FEATURES)` float32 in [0, 1]: the probability each feature is `+`.
        target_mask: `(phones, NUM_FEATURES)` float32: 1 where the phone specifies the feature (value not 0).
        known: `(phones,)` bool: the phone's articulatory features are known (`target_matrix`); unknown phones
            are scored as generic speech and not trained on.
    """

    symbols: tuple[str, ...]
    ipa: tuple[str, ...]
    word_index: np.ndarray
    words: tuple[str, ...]
    tones_after: tuple[tuple[str, ...], ...]
    targets: np.ndarray
    target_mask: np.ndarray
    known: np.ndarray

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def word_starts(self) -> np.ndarray:
        """`(phones,)` bool: the phone starts a word (a pause may come before it)."""
        starts = np.ones(len(self.symbols), bool)
        starts[1:] = self.word_index[1:] != self.word_index[:-1]
        return starts


# espeak-ng mnemonics follow Kirshenbaum's ASCII IPA; where the frontend has no IPA for a word (its mnemonic and IPA
# token counts differ, e.g. Polish palatalisation `n^ ;`), the phone's IPA is read from its mnemonic with this table.
_MNEMONIC_IPA = {
    "tS": "tʃ", "dZ": "dʒ", "ts": "ts", "dz": "dz", "pF": "pf", "n^": "ɲ", "l^": "ʎ", "J^": "ɲ", "r*": "ɾ",
    "r/": "ɹ", "@r": "ɚ", "a": "a", "A": "ɑ", "0": "ɒ", "O": "ɔ", "o": "o", "e": "e", "E": "ɛ", "@": "ə", "3": "ɜ",
    "V": "ʌ", "I": "ɪ", "i": "i", "U": "ʊ", "u": "u", "y": "y", "Y": "ø", "W": "œ", "&": "æ", "8": "ɵ", "p": "p",
    "b": "b", "t": "t", "d": "d", "k": "k", "g": "ɡ", "m": "m", "n": "n", "f": "f", "v": "v", "s": "s", "z": "z",
    "h": "h", "l": "l", "r": "r", "j": "j", "w": "w", "x": "x", "q": "q", "S": "ʃ", "Z": "ʒ", "T": "θ", "D": "ð",
    "N": "ŋ", "C": "ç", "R": "ʁ", "?": "ʔ", "X": "χ", "c": "c", "J": "ɟ", "B": "β", "G": "ɣ", "L": "ɫ", "H": "ɦ",
}  # fmt: skip
_MODIFIERS = {";": "ʲ", ":": "ː", "~": "\u0303"}


def mnemonic_ipa(symbol: str) -> str:
    """An IPA reading of an espeak-ng mnemonic (`"n^"` -> `"ɲ"`, `"t;"` -> `"tʲ"`, `"A:"` -> `"ɑː"`): longest
    matches in a Kirshenbaum table; `;`, `:` and `~` become palatalisation, length and nasality; variant marks
    (`#`, digits, `-`, `.`, `/`, ...) are dropped; a lone `;` (espeak-ng's palatal off-glide) is `j`. `""` when
    nothing is known."""
    if symbol == ";":
        return "j"
    out, position = [], 0
    while position < len(symbol):
        pair, single = symbol[position : position + 2], symbol[position]
        if pair in _MNEMONIC_IPA:
            out.append(_MNEMONIC_IPA[pair])
            position += 2
            continue
        if single in _MNEMONIC_IPA:
            out.append(_MNEMONIC_IPA[single])
        elif single in _MODIFIERS and out:
            out[-1] += _MODIFIERS[single]
        position += 1
    return "".join(out)


def target_matrix(ipa_symbols, mnemonics=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Articulatory targets of IPA strings: `(targets, mask, known)`.

    `targets` and `mask` are `(phones, NUM_FEATURES)` float32: `targets = (value + 1) / 2` (panphon's -1/+1 as
    0/1, means of multi-segment phones in between), `mask` 1 where the value is not 0 (0 = unspecified). A phone
    whose IPA is empty or unknown to panphon is read from its mnemonic (`mnemonic_ipa`, when `mnemonics` are
    given); if that fails too, `known` `(phones,)` is False and the row asks for 0.5 everywhere (a generic speech
    sound: it scores as a poor match, never as a free one).
    """
    count = len(ipa_symbols)
    values = np.zeros((count, NUM_FEATURES), np.float32)
    known = np.zeros(count, bool)
    for row, ipa in enumerate(ipa_symbols):
        for candidate in (ipa, mnemonic_ipa(mnemonics[row]) if mnemonics is not None else ""):
            if candidate:
                vector, found = articulatory_features(candidate)
                if found:
                    values[row], known[row] = vector, True
                    break
    targets = (values + 1.0) / 2.0
    mask = (np.abs(values) > 1e-6).astype(np.float32)
    targets[~known], mask[~known] = 0.5, 1.0
    return targets, mask, known


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
    if len(tokens) == count:
        words = tuple(tokens)
    else:  # espeak-ng merged or split words ("want to", numbers): name each word by its phones
        words = tuple(
            "".join(p.symbol for p in word.phonemes if p.kind != espeak.TONE_KIND) for word in utterance.words
        )
    targets, mask, known = target_matrix(ipa, symbols)
    return AlignmentPhones(
        tuple(symbols), tuple(ipa), np.asarray(word_index, np.int64), words, tuple(tones), targets, mask, known
    )
