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
        words: the words' written forms: the text's whitespace tokens (punctuation stripped); where espeak-ng
            merged tokens ("want to") or split one (numbers), as matched by `_word_names`.
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


def _spoken_count(phonemes) -> int:
    return sum(1 for phoneme in phonemes if phoneme.kind != espeak.TONE_KIND)


def _word_names(utterance, tokens: list, language: str) -> tuple[str, ...]:
    """Names of the frontend's words when espeak-ng merged text tokens ("want to" -> one word) or split one
    (numbers): tokens and words are matched where their cumulative phone counts meet (each token analysed alone);
    a word made of several tokens is named by them joined, words of one token by the token (a number) or by their
    phones (a script without spaces); counts one phone apart meet (linking phones). Where the counts never meet
    again, the remaining words are named by their phones."""
    word_counts = [_spoken_count(word.phonemes) for word in utterance.words]
    try:
        token_counts = [_spoken_count(espeak.analyze(token, language).phonemes) for token in tokens]
    except espeak.FrontendInputError:
        token_counts = []
    names, word, token = [], 0, 0
    while word < len(word_counts):
        start_word, start_token = word, token
        words_sum, tokens_sum = word_counts[word], token_counts[token] if token < len(token_counts) else -1
        word, token = word + 1, token + 1
        while abs(words_sum - tokens_sum) > 1 and tokens_sum >= 0:  # a phone of linking ("see it": s i: ;)
            if words_sum < tokens_sum and word < len(word_counts):
                words_sum, word = words_sum + word_counts[word], word + 1
            elif words_sum > tokens_sum and token < len(token_counts):
                tokens_sum, token = tokens_sum + token_counts[token], token + 1
            else:
                tokens_sum = -1
        if tokens_sum < 0:  # no meeting point: name the rest by their phones
            names += [_phone_name(w) for w in utterance.words[start_word:]]
            break
        if word - start_word > 1 and not any(character.isdigit() for character in tokens[start_token]):
            names += [_phone_name(w) for w in utterance.words[start_word:word]]  # a script without spaces
        else:
            names += [" ".join(tokens[start_token:token])] * (word - start_word)
    return tuple(names)


def _phone_name(word) -> str:
    return "".join(p.symbol for p in word.phonemes if p.kind != espeak.TONE_KIND)


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
    words = tuple(tokens) if len(tokens) == count else _word_names(utterance, tokens, language)
    targets, mask, known = target_matrix(ipa, symbols)
    return AlignmentPhones(
        tuple(symbols), tuple(ipa), np.asarray(word_index, np.int64), words, tuple(tones), targets, mask, known
    )
