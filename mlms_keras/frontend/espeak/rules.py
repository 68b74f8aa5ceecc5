"""The open frontend rules: espeak-ng's output -> phonemes for the languages beyond the paper's eight.

The paper's eight languages keep the rules the shipped voice was trained with (`PAPER_RULES`, in
`mlms_keras.frontend.espeak.analysis`); every other language (`OPEN_RULES`) goes through `open_word_tokens`, which
handles what only shows up in other languages (measured over the top words of ~60 languages):

- **language switches**: espeak-ng reads a foreign word (an English loanword in Dutch, Kanji in Japanese) with
  another language's rules and marks it `(en)...(nl)`; such a word is refused with `ForeignWordError`, since its
  phonemes belong to another inventory;
- **palatalisation**: the mark `;` (Russian `r;` = rʲ, Lithuanian, Romanian...) is its own mnemonic token but has
  no IPA token (the IPA glues ʲ onto the consonant), so the IPA is aligned around it and `;` gets the IPA `ʲ`;
- **tones**: tone numbers are glued to the vowel (`i214` in Mandarin, `a:2` in Vietnamese, `ei5` in Cantonese):
  the vowel and its tone become two phonemes, the tone of kind `"tone"` (in the language's inventory, see
  `mlms_keras.frontend.espeak.inventory`), and the tone is removed from the vowel's IPA. Tones are not phoneme
  events: a tone phoneme spans no audio (its label segment has zero length, like a phoneme espeak-ng renders
  inside its neighbour's transition); it carries the tone into the neighbours' quinphone context;
- **glued phonemes**: a token that is two inventory phonemes without a separator (Korean `nw` or `q'i`, Persian
  `tg`) is split into them when there is exactly one way to do so (a stress mark always starts a phoneme); the
  IPA of the pieces is then unknown (`""`);
- **pause marks**: pause-type phonemes written without `_` (Dutch `!` after a word, Persian `1`) are pauses, as
  in espeak-ng's phoneme events (`mlms_keras.frontend.espeak.inventory.pause_marks`); a syllable mark `-` after
  a consonant that is not itself a phoneme (Russian-Latvian `f-`) is dropped;
- **IPA spellings**: Greek ε (U+03B5), which espeak-ng writes in Danish IPA, becomes IPA ɛ;
- **clause ends** of other scripts (`।`, `؟`, `。`, `？`, `！`, `،`, `，`) end phrases like `.`, `?`, `!` and `,`; in
  Greek `;` is the question mark.
"""

from __future__ import annotations

import re

from mlms_keras.frontend.espeak.inventory import (
    TONE_KIND,
    canonical_symbol,
    parse_mnemonic,
    pause_marks,
    phoneme_inventory,
)
from mlms_keras.frontend.espeak.library import EspeakError, FrontendInputError

__all__ = [
    "LANGUAGE_SWITCH",
    "OPEN_TERMINATORS",
    "PALATALISATION",
    "ForeignWordError",
    "normalise_ipa",
    "normalise_terminator",
    "open_word_tokens",
    "split_tone",
]

#: espeak-ng's language-switch marker, e.g. `(en)` ... `(nl)`.
LANGUAGE_SWITCH = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*)\)")
#: The palatalisation mark: its own mnemonic token, without an IPA token.
PALATALISATION = ";"
# Tokens tried in turn when aligning the IPA: `;`, then `;` and Romanian `I^` (n;|I^ is IPA nʲʲ).
_PALATALISATION_TOKENS = ({PALATALISATION}, {PALATALISATION, "I^"})
#: Clause-ending punctuation of other scripts -> its Latin meaning (Devanagari danda, Arabic and CJK marks).
OPEN_TERMINATORS = {
    "।": ".",
    "॥": ".",
    "؟": "?",
    "\u037e": "?",
    "。": ".",
    "？": "?",
    "！": "!",
    "،": ",",
    "，": ",",
    "、": ",",
}
_IPA_RESPELLINGS = {"ε": "ɛ"}
# espeak-ng writes a tone phoneme in IPA as its first digit, through its mnemonic->IPA table (where "3" is ɜ).
_TONE_IPA = {"3": "ɜ"}


class ForeignWordError(FrontendInputError):
    """espeak-ng read a word with another language's rules (a loanword, or a character of another script).

    A `FrontendInputError`, hence a `ValueError`: the command line reports it as one line.
    """


def normalise_ipa(ipa: str) -> str:
    """espeak-ng IPA -> the IPA spelling the frontend uses (Greek ε -> ɛ)."""
    return "".join(_IPA_RESPELLINGS.get(character, character) for character in ipa)


def normalise_terminator(terminator: str, scripts: tuple[str, ...] = ()) -> str:
    """A phrase's closing punctuation with other scripts' marks replaced by `.`, `?`, `!` or `,`.

    In Greek (`"GREEK"` in `scripts`) `;` is the question mark.
    """
    if "GREEK" in scripts:
        terminator = terminator.replace(";", "?")
    return "".join(OPEN_TERMINATORS.get(character, character) for character in terminator)


def split_tone(symbol: str, language: str) -> tuple[str, str] | None:
    """A vowel with a glued tone number -> `(vowel, tone)`, e.g. `"i214"` -> `("i", "214")`; `None` otherwise.

    Only digits that are a tone phoneme of the language's inventory count, and only after a base that is itself a
    phoneme (possibly with the length mark, `a:2`).
    """
    match = re.fullmatch(r"(.*?)([0-9]+)", symbol)
    if match is None or not match.group(1):
        return None
    base, tone = match.groups()
    inventory = phoneme_inventory(language)
    if inventory.get(tone) != TONE_KIND:
        return None
    try:
        canonical_symbol(base, language)
    except EspeakError:
        return None
    return base, tone


def _split_glued(symbol: str, language: str) -> list[str] | None:
    """A token made of several inventory phonemes without separators -> them, if there is exactly one split."""
    inventory = phoneme_inventory(language)
    splits: list[list[str]] = []

    def walk(rest: str, pieces: list[str]) -> None:
        if len(splits) > 1:
            return
        if not rest:
            splits.append(pieces)
            return
        for end in range(len(rest), 0, -1):
            head = rest[:end]
            if head in inventory and inventory[head] != TONE_KIND:
                walk(rest[end:], pieces + [head])

    walk(symbol, [])
    return splits[0] if len(splits) == 1 and len(splits[0]) > 1 else None


def _align_ipa(mnemonic_tokens: list[str], ipa_tokens: list[str]) -> list[str]:
    """One IPA token per mnemonic token: 1:1 when the counts agree; else around the palatalisation tokens that
    have no IPA token of their own (`;`, then also Romanian `I^`), which get `ʲ`; else `""` for all."""
    if len(mnemonic_tokens) == len(ipa_tokens):
        return list(ipa_tokens)
    for marks in _PALATALISATION_TOKENS:
        is_mark = [token in marks for token in mnemonic_tokens]
        if len(mnemonic_tokens) - sum(is_mark) == len(ipa_tokens):
            remaining = iter(ipa_tokens)
            return ["ʲ" if mark else next(remaining) for mark in is_mark]
    return [""] * len(mnemonic_tokens)


def _split_at_stress(token: str) -> list[str]:
    """`"q'i"` -> `["q", "'i"]`: a stress mark inside a token starts a new phoneme (Korean, across words)."""
    parsed = parse_mnemonic(token)
    if parsed is None:
        return [token]
    head = token[: len(token) - len(parsed[0])]
    pieces = re.split(r"(?=['])", parsed[0])
    return [head + pieces[0]] + pieces[1:] if len(pieces) > 1 and pieces[0] else [token]


def open_word_tokens(
    mnemonic_word: str, ipa_word: str, separator: str, language: str, text: str
) -> list[tuple[str, str, int, str, bool]]:
    """One phonemised word under the open rules -> `(symbol, ipa, stress, kind, lengthened)` per phoneme.

    Args:
        mnemonic_word: the word's espeak-ng mnemonics, tokens joined by `separator`.
        ipa_word: the word's IPA, tokens joined by `separator`.
        separator: the phoneme separator of both runs.
        language: the language code.
        text: the whole text (for error messages).

    Raises:
        ForeignWordError: espeak-ng switched to another language inside the word.
        EspeakError: a token that is not a phoneme of the language's inventory, even after the rules.
    """
    switch = LANGUAGE_SWITCH.search(mnemonic_word)
    if switch is not None:
        spoken = "".join(LANGUAGE_SWITCH.sub("", mnemonic_word).split(separator))
        raise ForeignWordError(
            f"espeak-ng reads a word of {text[:60]!r} as {switch.group(1)!r}, not {language!r} (phonemes "
            f"{spoken!r}): a loanword or a character of another script. Remove or respell that word."
        )
    mnemonic_tokens = mnemonic_word.split(separator)
    ipa_tokens = _align_ipa(mnemonic_tokens, ipa_word.split(separator))
    inventory = phoneme_inventory(language)
    pauses = pause_marks(language)
    phonemes = []
    for mnemonic_token, ipa_token in zip(mnemonic_tokens, ipa_tokens):
        pieces = _split_at_stress(mnemonic_token)
        if len(pieces) > 1:
            for piece in pieces:
                phonemes.extend(open_word_tokens(piece, "", separator, language, text))
            continue
        parsed = parse_mnemonic(mnemonic_token)
        if parsed is None or parsed[0] in pauses:
            continue
        symbol, stress = parsed
        ipa = normalise_ipa("".join(c for c in ipa_token if c not in "ˈˌ"))
        if symbol == PALATALISATION and not ipa:
            ipa = "ʲ"  # after a vowel (Greek "δύο" = ði;o) espeak-ng writes an empty IPA token for it
        try:
            base, lengthened = canonical_symbol(symbol, language)
        except EspeakError as error:
            tone = split_tone(symbol, language)
            if tone is not None:
                base, lengthened = canonical_symbol(tone[0], language)
                rendered = _TONE_IPA.get(tone[1][0], tone[1][0])
                ipa = ipa[: -len(rendered)] if ipa.endswith(rendered) else ipa
                phonemes.append((base, ipa, stress, inventory[base], lengthened))
                phonemes.append((tone[1], "", 0, TONE_KIND, False))
                continue
            pieces = _split_glued(symbol, language)
            if pieces is None:
                raise EspeakError(f"{error}; text {text[:60]!r}") from None
            for number, piece in enumerate(pieces):
                phonemes.append((piece, "", stress if number == 0 else 0, inventory[piece], False))
            continue
        phonemes.append((base, ipa, stress, inventory[base], lengthened))
    return phonemes
