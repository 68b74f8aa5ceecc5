"""Sentence generator: determinism, lengths, question and number mix, script and vocabulary validity."""

import re

import pytest
import wordfreq

from mlms_keras.data.sentences import (
    SUPPORTED_LANGUAGES,
    generate_sentences,
    load_grammar,
    validate_grammar,
    vocabulary,
)
from mlms_keras.languages import LANGUAGE_CODES

PAPER_LANGUAGES = ("en-us", "en-gb", "fr", "it", "de", "es", "pl", "pt-br")

# Independent of the shipped grammars: each language's letters, and its number words for 2..12.
LETTERS = {
    "en-us": "a-z",
    "en-gb": "a-z",
    "fr": "a-zàâæçéèêëîïôœùûüÿ",
    "it": "a-zàèéìíîòóùú",
    "de": "a-zäöüß",
    "es": "a-záéíóúüñ",
    "pl": "a-ząćęłńóśźż",
    "pt-br": "a-záâãàçéêíóôõú",
}
NUMBER_WORDS = {
    "en-us": "two three four five six seven eight nine ten eleven twelve",
    "en-gb": "two three four five six seven eight nine ten eleven twelve",
    "fr": "deux trois quatre cinq six sept huit neuf dix onze douze",
    "it": "due tre quattro cinque sei sette otto nove dieci undici dodici",
    "de": "zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
    "es": "dos tres cuatro cinco seis siete ocho nueve diez once doce",
    "pl": "dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć jedenaście dwanaście",
    "pt-br": "dois três quatro cinco seis sete oito nove dez onze doze",
}
# One-letter tokens that are words (espeak-ng reads them as words, not letter names).
REAL_ONE_LETTER_WORDS = {
    "en-us": set(),
    "en-gb": set(),
    "fr": {"à"},
    "it": {"è", "e", "a"},
    "de": set(),
    "es": {"y", "a"},
    "pl": {"i"},
    "pt-br": {"o", "a", "e", "é", "à"},
}
WORDFREQ_CODE = {
    "en-us": "en",
    "en-gb": "en",
    "fr": "fr",
    "it": "it",
    "de": "de",
    "es": "es",
    "pl": "pl",
    "pt-br": "pt",
}


def test_every_paper_language_is_supported():
    assert set(PAPER_LANGUAGES) <= set(SUPPORTED_LANGUAGES)
    assert set(LANGUAGE_CODES) <= set(SUPPORTED_LANGUAGES), "every language of the universe needs a grammar"


@pytest.mark.parametrize("language", PAPER_LANGUAGES)
def test_sentences_are_deterministic_distinct_and_extend_for_a_seed(language):
    first = generate_sentences(language, 60, seed=7)
    assert first == generate_sentences(language, 60, seed=7)
    assert generate_sentences(language, 90, seed=7)[:60] == first
    assert len(set(first)) == 60
    assert first != generate_sentences(language, 60, seed=8)


@pytest.mark.parametrize("language", PAPER_LANGUAGES)
def test_sentences_have_4_to_16_words_of_the_language_script(language):
    sentences = generate_sentences(language, 300, seed=1)
    word_pattern = re.compile(rf"^[¿]?(?:[{LETTERS[language]}]+(?:['-][{LETTERS[language]}]+)*|\d+)[,.?]?$")
    lengths = set()
    for sentence in sentences:
        words = sentence.split()
        lengths.add(len(words))
        assert 4 <= len(words) <= 16, sentence
        assert sentence[-1] in ".?", sentence
        assert sentence.lstrip("¿")[0].isupper(), sentence
        for word in words:
            assert word_pattern.match(word.lower()), f"{word!r} in {sentence!r}"
            core = word.strip("¿,.?").lower()
            if not core.isdigit():
                assert len(core) > 1 or core in REAL_ONE_LETTER_WORDS[language], f"{word!r} would be spelled out"
    assert min(lengths) <= 5 and max(lengths) >= 14, "the lengths should spread over the 4-16 range"


@pytest.mark.parametrize("language", PAPER_LANGUAGES)
def test_sentences_mix_statements_questions_and_numbers(language):
    sentences = generate_sentences(language, 400, seed=3)
    questions = sum(sentence.endswith("?") for sentence in sentences)
    assert 0.15 * 400 <= questions <= 0.45 * 400
    if language == "es":
        assert all(sentence.startswith("¿") == sentence.endswith("?") for sentence in sentences)
    number_words = set(NUMBER_WORDS[language].split())
    with_digits = sum(bool(re.search(r"\d", sentence)) for sentence in sentences)
    with_number_words = sum(
        bool(number_words & {word.strip("¿,.?").lower() for word in sentence.split()}) for sentence in sentences
    )
    assert with_digits >= 0.04 * 400 and with_number_words >= 0.01 * 400
    assert with_digits + with_number_words <= 0.35 * 400, "numbers should be occasional"


@pytest.mark.parametrize("language", PAPER_LANGUAGES)
def test_grammar_words_are_real_words_of_the_language(language):
    # wordfreq's shipped frequency lists are an independent spelling check on the hand-written grammars.
    unknown = sorted(
        word
        for word in vocabulary(language)
        if wordfreq.zipf_frequency(word, WORDFREQ_CODE[language]) == 0.0
        and not all(wordfreq.zipf_frequency(part, WORDFREQ_CODE[language]) > 0 for part in re.split("['-]", word))
    )
    assert unknown == []


def test_unknown_language_and_bad_count_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="Unknown language code 'xx'"):
        generate_sentences("xx", 3, seed=0)
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        generate_sentences("fr", -1, seed=0)
    assert generate_sentences("fr", 0, seed=0) == []


def test_grammar_validation_rejects_foreign_script_digits_and_spelled_out_letters():
    grammar = load_grammar("pl")
    grammar["objects"] = grammar["objects"] + ["дом", "b2b", "x"]
    with pytest.raises(ValueError, match="'дом' has characters outside.*'b2b' has characters outside.*'x' is a single"):
        validate_grammar(grammar, "broken-pl")


def test_english_verbs_get_objects_that_fit_and_places_do_not_repeat_the_object():
    sentences = generate_sentences("en-us", 600, seed=5)
    openable = {"letter", "window", "book", "door", "bottle", "blue"}  # "the blue box"
    readable = {"letter", "book", "newspaper", "ticket", "map"}
    checked = 0
    for sentence in sentences:
        for verb, allowed in (
            ("opens", openable),
            ("open", openable),
            ("closes", openable),
            ("close", openable),
            ("reads", readable),
            ("read", readable),
        ):
            for match in re.finditer(rf"\b{verb} the (\w+)", sentence):
                assert match.group(1) in allowed, sentence
                checked += 1
        assert not re.search(r"\bthe (\w+) (?:in|at|near|on|by) the \1\b", sentence), sentence
    assert checked >= 20


def test_grammar_validation_rejects_a_verb_without_fitting_objects():
    grammar = load_grammar("en-us")
    grammar["transitive_verbs"] = grammar["transitive_verbs"] + ["eats|eat>z"]
    with pytest.raises(ValueError, match="'eats\\|eat' takes classes \\['z'\\] that no object has"):
        validate_grammar(grammar, "broken-en")
