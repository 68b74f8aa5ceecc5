"""Text analysis with espeak-ng: phrases (clauses) of words of syllables of phonemes, with lexical stress.

Phrases are espeak-ng clauses (split at punctuation); words are the phonemised words (a number becomes several
words); syllables are built around vowel nuclei (see `_syllabify`). Each phoneme has its espeak-ng mnemonic (the
symbol of `mlms_keras.frontend.espeak.inventory`) and its IPA, from two runs of `espeak_TextToPhonemes`.

The paper's eight languages keep the token rules the shipped voice was trained with (`PAPER_RULES`: a word whose
mnemonic and IPA token counts differ gets no IPA); every other language goes through the open rules of
`mlms_keras.frontend.espeak.rules` (palatalisation, tones, language switches, glued phonemes).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from mlms_keras.frontend.espeak.inventory import (
    TONE_KIND,
    canonical_symbol,
    parse_mnemonic,
    pause_marks,
    phoneme_inventory,
)
from mlms_keras.frontend.espeak.library import ESPEAK_LOCK, EspeakError, FrontendInputError, text_to_phoneme_clauses
from mlms_keras.frontend.espeak.rules import OPEN_TERMINATORS, normalise_terminator, open_word_tokens
from mlms_keras.frontend.text import clean_text
from mlms_keras.languages import PAPER_RULES, get_language

__all__ = [
    "MAX_TEXT_CHARACTERS",
    "FrontendInputError",
    "Phoneme",
    "Phrase",
    "Syllable",
    "Utterance",
    "Word",
    "analyze",
    "validate_text",
]

MAX_TEXT_CHARACTERS = 2000
logger = logging.getLogger(__name__)

# A separator that never occurs in espeak-ng mnemonics (they use ASCII punctuation such as _ : ' , # -).
_PHONEME_SEPARATOR = "\u2016"
_IPA_STRESS_MARKS = "ˈˌ"
_PHRASE_TERMINATORS = ".?!,;:¿¡…"
# Letters that belong to no script: modifier letters such as the Hawaiian ʻokina or the Ukrainian apostrophe ʼ.
_SCRIPT_NEUTRAL_PREFIX = "MODIFIER LETTER"


@dataclass(frozen=True)
class Phoneme:
    """One phoneme of an analysed utterance.

    Attributes:
        symbol: espeak-ng mnemonic without stress marks, e.g. `"oU"`.
        ipa: IPA transcription of the phoneme without stress marks (`""` for a few espeak-internal phonemes).
        stress: 0 unstressed, 1 primary, 2 secondary (espeak-ng marks stress on the vowel).
        kind: espeak-ng phoneme type: `"vowel"`, `"liquid"`, `"stop"`, `"voiced_stop"`, `"fricative"`,
            `"voiced_fricative"` or `"nasal"`; `"tone"` for the tone of the vowel before it in tone languages
            (open rules only: it spans no audio).
        lengthened: espeak-ng appended its length mark `:` (Italian geminates `t:`, Polish `O:`, ...); the
            symbol is then the base phoneme.
    """

    symbol: str
    ipa: str
    stress: int
    kind: str
    lengthened: bool = False

    @property
    def is_vowel(self) -> bool:
        """True for syllable nuclei (espeak-ng vowels, including syllabic consonants such as `n-`)."""
        return self.kind == "vowel"


@dataclass
class Syllable:
    """Consecutive phonemes around one vowel nucleus; `stress` is the nucleus' stress (0, 1, 2)."""

    phonemes: list[Phoneme]
    stress: int


@dataclass
class Word:
    """A phonemised word (numbers and abbreviations may expand into several)."""

    syllables: list[Syllable]

    @property
    def phonemes(self) -> list[Phoneme]:
        """The word's phonemes in order."""
        return [phoneme for syllable in self.syllables for phoneme in syllable.phonemes]


@dataclass
class Phrase:
    """An espeak-ng clause. `terminator` is the punctuation that ended it (`""` if none), e.g. `"?"`."""

    words: list[Word]
    terminator: str

    @property
    def is_question(self) -> bool:
        """True when the phrase ends in a question mark."""
        return "?" in self.terminator


@dataclass
class Utterance:
    """The frontend's analysis of one text: phrases of words of syllables of phonemes."""

    language: str
    text: str
    phrases: list[Phrase]

    @property
    def phonemes(self) -> list[Phoneme]:
        """All phonemes in order (no pauses)."""
        return [p for phrase in self.phrases for word in phrase.words for p in word.phonemes]

    @property
    def words(self) -> list[Word]:
        """All words in order."""
        return [word for phrase in self.phrases for word in phrase.words]


def validate_text(text: str, language: str) -> str:
    """Check a text before phonemisation; returns it with surrounding whitespace stripped.

    Documented handling of bad input:

    - not a string, empty or whitespace only -> `FrontendInputError`;
    - control characters (NUL, ...; `mlms_keras.frontend.text`) are removed, with a warning;
    - no letters or digits (e.g. punctuation only) -> `FrontendInputError`;
    - letters of another script than the language's (`Language.scripts`; e.g. Cyrillic in French) ->
      `FrontendInputError` naming the characters and their script (espeak-ng would otherwise spell them out or
      switch language silently); modifier letters (the Hawaiian ʻokina, the Ukrainian apostrophe ʼ) belong to
      every script, and marks that are not letters (Indic vowel signs, viramas) are not checked;
    - longer than `MAX_TEXT_CHARACTERS` (2000) -> `FrontendInputError` asking to split the text into sentences
      (the frontend works clause by clause, but one "utterance" of that size is almost always a whole document by
      mistake, and would make a single training sequence of minutes).
    """
    spec = get_language(language)
    if not isinstance(text, str):
        raise FrontendInputError(f"text must be a string, got {type(text).__name__}")
    cleaned = clean_text(text, read_symbols=True)
    if cleaned.controls:  # libespeak-ng reads a C string: a NUL would silently end the text
        logger.warning("%s (%s): %r", cleaned.warnings()[0], language, cleaned.text[:60])
    stripped = cleaned.text.strip()
    if not stripped:
        raise FrontendInputError(f"text is empty ({language}): give at least one word")
    if len(stripped) > MAX_TEXT_CHARACTERS:
        raise FrontendInputError(
            f"text has {len(stripped)} characters, more than {MAX_TEXT_CHARACTERS} ({language}): "
            "split it into sentences and synthesise them one by one"
        )
    if not any(character.isalnum() for character in stripped):
        raise FrontendInputError(f"text {stripped[:40]!r} has no letters or digits ({language}): nothing to pronounce")
    foreign = list(dict.fromkeys(character for character in stripped if not _in_scripts(character, spec.scripts)))
    if foreign:
        found = list(dict.fromkeys(_script_of(character) for character in foreign))
        raise FrontendInputError(
            f"text contains characters outside the {' or '.join(spec.scripts)} script of {spec.display_name} "
            f"({language}): {''.join(foreign)!r} ({', '.join(found)}). Transliterate them or remove them."
        )
    return stripped


def _in_scripts(character: str, scripts: tuple[str, ...]) -> bool:
    """True for a character that is no letter, a script-neutral modifier letter, or a letter of one of `scripts`."""
    if not character.isalpha():
        return True
    name = unicodedata.name(character, "")
    return name.startswith(_SCRIPT_NEUTRAL_PREFIX) or any(name.startswith(script) for script in scripts)


def _script_of(character: str) -> str:
    """The script of a letter: the first word of its Unicode name (`"CYRILLIC"`, `"CJK"` for Han), else `"UNKNOWN"`."""
    name = unicodedata.name(character, "")
    return name.split(" ")[0].split("-")[0] if name else "UNKNOWN"


def analyze(text: str, language: str) -> Utterance:
    """Phonemise a text: phrases (clauses) of words of syllables of phonemes, with stress.

    Args:
        text: the text, in the language's script (see `validate_text` for the bad-input rules).
        language: a language code of `mlms_keras.languages`.

    Returns:
        `Utterance`. Pauses are not phonemes here; phrase boundaries carry them.

    Raises:
        FrontendInputError: bad text, or a text espeak-ng turns into no phonemes; `ForeignWordError` (open rules)
            for a word espeak-ng reads as another language.
        EspeakError: espeak-ng produced a phoneme outside the language's inventory.
        VoiceSelectionError: the language's voice cannot be selected.
    """
    text = validate_text(text, language)
    spec = get_language(language)
    inventory = phoneme_inventory(language)
    with ESPEAK_LOCK:  # both runs with the same voice, whatever other threads do
        mnemonic_clauses = text_to_phoneme_clauses(text, spec, _PHONEME_SEPARATOR, ipa=False)
        ipa_clauses = text_to_phoneme_clauses(text, spec, _PHONEME_SEPARATOR, ipa=True)
    if len(mnemonic_clauses) != len(ipa_clauses):
        raise EspeakError(f"espeak-ng gave {len(mnemonic_clauses)} mnemonic but {len(ipa_clauses)} IPA clauses")
    phrases = []
    for (mnemonic_clause, consumed), (ipa_clause, _) in zip(mnemonic_clauses, ipa_clauses):
        mnemonic_words = mnemonic_clause.split()
        ipa_words = ipa_clause.split()
        if len(mnemonic_words) != len(ipa_words):
            # The IPA of a word made only of pause phonemes is empty and vanishes from the split.
            mnemonic_words = [w for w in mnemonic_words if _word_has_phonemes(w, pause_marks(language))]
            ipa_words = [w for w in ipa_words if w.replace(_PHONEME_SEPARATOR, "")]
        words = []
        for mnemonic_word, ipa_word in zip(mnemonic_words, ipa_words):
            if spec.frontend_rules != PAPER_RULES:
                tokens = open_word_tokens(mnemonic_word, ipa_word, _PHONEME_SEPARATOR, language, text)
                phonemes = [Phoneme(*token) for token in tokens]
                if phonemes:
                    words.append(Word(_syllabify(phonemes)))
                continue
            mnemonic_tokens = mnemonic_word.split(_PHONEME_SEPARATOR)
            ipa_tokens = ipa_word.split(_PHONEME_SEPARATOR)
            if len(mnemonic_tokens) != len(ipa_tokens):
                ipa_tokens = [""] * len(mnemonic_tokens)  # keep the phonemes; articulatory features unknown
            phonemes = []
            for mnemonic_token, ipa_token in zip(mnemonic_tokens, ipa_tokens):
                parsed = parse_mnemonic(mnemonic_token)
                if parsed is None:
                    continue
                symbol, stress = parsed
                try:
                    symbol, lengthened = canonical_symbol(symbol, language)
                except EspeakError as error:
                    raise EspeakError(f"{error}; text {text[:60]!r}") from None
                ipa = "".join(c for c in ipa_token if c not in _IPA_STRESS_MARKS)
                phonemes.append(Phoneme(symbol, ipa, stress, inventory[symbol], lengthened))
            if phonemes:
                words.append(Word(_syllabify(phonemes)))
        if words:
            if spec.frontend_rules == PAPER_RULES:
                terminator = _terminator(consumed)
            else:
                terminator = normalise_terminator(_terminator(consumed, open_rules=True), spec.scripts)
            phrases.append(Phrase(words, terminator))
    if not phrases:
        raise FrontendInputError(f"espeak-ng found no pronounceable words in {text[:60]!r} ({language})")
    return Utterance(language, text, phrases)


def _word_has_phonemes(mnemonic_word: str, pauses: frozenset[str] = frozenset()) -> bool:
    parsed = [parse_mnemonic(token) for token in mnemonic_word.split(_PHONEME_SEPARATOR)]
    return any(item is not None and item[0] not in pauses for item in parsed)


def _terminator(consumed_text: str, open_rules: bool = False) -> str:
    # espeak-ng reads a character or two past the clause end, so take the last run of punctuation.
    punctuation = _PHRASE_TERMINATORS + ("".join(OPEN_TERMINATORS) if open_rules else "")
    runs = re.findall(f"[{re.escape(punctuation)}]+", consumed_text.rstrip("\0"))
    return runs[-1] if runs else ""


def _syllabify(phonemes: list[Phoneme]) -> list[Syllable]:
    """Group a word's phonemes into syllables.

    Each vowel (espeak-ng phoneme type `"vowel"`, which includes syllabic consonants) is one nucleus.
    Consonants before the first nucleus are its onset, after the last its coda. Between two nuclei, a
    single consonant starts the next syllable (onset first); of two or more, the first closes the earlier
    syllable and the rest start the next one. A tone phoneme (open rules) stays with the vowel before it. A word
    without a vowel is one syllable (stress 0).
    """
    nuclei = [index for index, phoneme in enumerate(phonemes) if phoneme.is_vowel]
    if not nuclei:
        return [Syllable(list(phonemes), 0)]
    boundaries = [0]
    for left, right in zip(nuclei, nuclei[1:]):
        while left + 1 < right and phonemes[left + 1].kind == TONE_KIND:
            left += 1  # a vowel's tone stays in its syllable
        consonants = right - left - 1
        boundaries.append(left + 2 if consonants >= 2 else right - consonants)
    boundaries.append(len(phonemes))
    syllables = []
    for number, (start, end) in enumerate(zip(boundaries, boundaries[1:])):
        syllables.append(Syllable(phonemes[start:end], phonemes[nuclei[number]].stress))
    return syllables
