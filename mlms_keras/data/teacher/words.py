"""Sentences for languages without a hand-written grammar, from the language's word-frequency list (wordfreq).

The paper's eight languages have grammars (`mlms_keras.data.sentences`); any other language with a wordfreq list
gets sentences of 4 to 9 frequent words in random order, sometimes with a comma, ending in `.`, `?` or `!`. They
are word salad, but every word is a real word that espeak-ng pronounces natively, which is what the teacher corpus
needs: varied phoneme sequences, stress and phrase structure.

The word pool of a language: wordfreq's top words, keeping words of two or more letters of the language's own
script(s) (`Language.scripts`; letters, combining marks and modifier letters only, so no digits or
abbreviations with dots), that the frontend phonemises without a language switch or an unknown phoneme
(`espeak.analyze` of the word alone). Greek words get their final sigma back (wordfreq folds "ς" to "σ").

**Language codes are mapped to wordfreq explicitly** (`WORDFREQ_CODES`): asked for a language it lacks, wordfreq
silently falls back to a "nearest match" (Armenian gets Russian words, Marathi gets Hindi, Welsh gets English).
Serbian, Croatian and Bosnian share wordfreq's Serbo-Croatian list (Latin script, which the Serbian voice reads);
Mandarin uses the Chinese list; the romanised voices (`cmn-latn-pinyin`, `fa-latn`), Latgalian, Cantonese and
Hakka have none.

Everything is deterministic for a seed, a wordfreq version and an espeak-ng version.
"""

from __future__ import annotations

import functools
import random
import unicodedata

import wordfreq

from mlms_keras.frontend import espeak
from mlms_keras.languages import all_languages, get_language

__all__ = [
    "MAX_SENTENCE_WORDS",
    "MIN_SENTENCE_WORDS",
    "POOL_SIZE",
    "WORDFREQ_CODES",
    "word_pool",
    "word_sentences",
    "wordfreq_code",
    "wordfreq_languages",
]

MIN_SENTENCE_WORDS = 4
MAX_SENTENCE_WORDS = 9
#: Words per language pool (from wordfreq's top 4 x POOL_SIZE, after filtering).
POOL_SIZE = 2000
_COMMA_PROBABILITY = 0.3
_TERMINATORS = (".", ".", ".", "?", "!")
_MAX_ATTEMPTS_PER_SENTENCE = 50
_DOTTED_I_LANGUAGES = ("tr", "az")


def _same(*codes: str) -> dict[str, str]:
    return {code: code for code in codes}


#: Language code -> wordfreq language code, for every language with a wordfreq list ("small" or "large").
WORDFREQ_CODES: dict[str, str] = {
    **_same("ar", "bg", "bn", "cs", "da", "de", "el", "es", "fa", "fi", "fr", "he", "hi", "hu", "id", "is", "it"),
    **_same("ja", "ko", "lt", "lv", "mk", "ms", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "ta", "tr"),
    **_same("uk", "ur", "vi", "ca"),
    **dict.fromkeys(("ca-ba", "ca-nw", "ca-va"), "ca"),
    **dict.fromkeys(("en-us", "en-gb", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd"), "en"),
    **dict.fromkeys(("en-gb-x-rp", "en-us-nyc", "en-shaw"), "en"),
    "es-419": "es",
    **dict.fromkeys(("fr-be", "fr-ch"), "fr"),
    "pt-br": "pt",
    **dict.fromkeys(("ru-cl", "ru-lv"), "ru"),
    **dict.fromkeys(("vi-vn-x-central", "vi-vn-x-south"), "vi"),
    "cmn": "zh",
    **dict.fromkeys(("hr", "bs", "sr"), "sh"),
}


def wordfreq_languages() -> tuple[str, ...]:
    """The codes of the languages with a word-frequency list, in `all_languages()` order."""
    return tuple(language.code for language in all_languages() if language.code in WORDFREQ_CODES)


def wordfreq_code(language: str) -> str:
    """The wordfreq code of a language code, e.g. `"cmn"` -> `"zh"`.

    Raises:
        ValueError: an unknown language, or one without a wordfreq list (the message lists those with one).
    """
    get_language(language)  # unknown codes get the universe's error, with suggestions
    code = WORDFREQ_CODES.get(language)
    if code is None or code not in wordfreq.available_languages():
        raise ValueError(
            f"Language {language!r} has no word-frequency list to make sentences from. Languages with one: "
            f"{', '.join(wordfreq_languages())}. For another language, bring your own recordings and texts."
        )
    return code


def _is_word(word: str, scripts: tuple[str, ...]) -> bool:
    """Two or more letters (combining marks and modifier letters allowed) of one of `scripts`."""
    letters = 0
    for character in word:
        category = unicodedata.category(character)
        if category.startswith("M"):
            continue
        if not character.isalpha():
            return False
        name = unicodedata.name(character, "")
        if not (name.startswith("MODIFIER LETTER") or any(name.startswith(script) for script in scripts)):
            return False
        letters += 1
    return letters >= 2


def _pronounceable(word: str, language: str) -> bool:
    try:
        utterance = espeak.analyze(word, language)
    except (ValueError, espeak.EspeakError):  # another language's rules, an unknown phoneme, nothing to say
        return False
    return bool(utterance.phonemes)


@functools.cache
def word_pool(language: str, size: int = POOL_SIZE) -> tuple[str, ...]:
    """The language's word pool: up to `size` frequent words the frontend pronounces natively, most frequent first.

    Raises:
        ValueError: the language has no wordfreq list, or too few usable words (fewer than 50).
    """
    spec = get_language(language)
    code = wordfreq_code(language)
    pool: list[str] = []
    for word in wordfreq.top_n_list(code, 4 * size):
        word = unicodedata.normalize("NFC", word)
        if not _is_word(word, spec.scripts):
            continue
        if "GREEK" in spec.scripts and word.endswith("σ"):
            word = word[:-1] + "ς"  # wordfreq folds the final sigma
        if word in pool or not _pronounceable(word, language):
            continue
        pool.append(word)
        if len(pool) == size:
            break
    if len(pool) < 50:
        raise ValueError(
            f"Only {len(pool)} words of wordfreq's {code!r} list are {', '.join(spec.scripts)} words that espeak-ng "
            f"pronounces as {language!r}; too few for varied sentences. Use another language."
        )
    return tuple(pool)


def _sentence(rng: random.Random, pool: tuple[str, ...], max_words: int, language: str) -> str:
    count = rng.randint(MIN_SENTENCE_WORDS, max(MIN_SENTENCE_WORDS, min(MAX_SENTENCE_WORDS, max_words)))
    words = rng.sample(pool, count)
    if count >= 6 and rng.random() < _COMMA_PROBABILITY:
        comma_after = rng.randint(2, count - 3)
        words[comma_after] += ","
    text = " ".join(words)
    return _upper_first(text, language) + rng.choice(_TERMINATORS)


def _upper_first(text: str, language: str) -> str:
    """The text with its first letter in upper case (Turkish and Azerbaijani keep the dot: i -> İ)."""
    if language in _DOTTED_I_LANGUAGES and text[:1] in "iı":
        return {"i": "İ", "ı": "I"}[text[0]] + text[1:]
    return text[:1].upper() + text[1:]


def word_sentences(language: str, count: int, seed: int, max_words: int = MAX_SENTENCE_WORDS) -> list[str]:
    """`count` sentences of 4 to `max_words` (at most 9) words from the language's word pool, deterministic for a seed.

    Every sentence is checked with `espeak.analyze` (words next to each other can still trip espeak-ng); one that
    fails is replaced by the next draw.

    Raises:
        ValueError: the language has no wordfreq list, or the frontend rejects sentence after sentence.

    Example:
        >>> word_sentences("sv", 2, seed=0)  # doctest: +SKIP
        ['Ovanligt söder satsa familjen möjliga arbeta förbi.', ...]
    """
    pool = word_pool(language)
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        for _attempt in range(_MAX_ATTEMPTS_PER_SENTENCE):
            text = _sentence(rng, pool, max_words, language)
            try:
                espeak.analyze(text, language)
            except (ValueError, espeak.EspeakError):
                continue
            sentences.append(text)
            break
        else:
            raise ValueError(
                f"The frontend rejected {_MAX_ATTEMPTS_PER_SENTENCE} sentences in a row for {language!r} (the last: "
                f"{text!r}); this language's espeak-ng output is not usable for a teacher corpus."
            )
    return sentences
