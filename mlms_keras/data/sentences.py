"""Deterministic sentence generator for the teacher corpus.

Sentences come from small hand-written grammars shipped with the package (`mlms_keras/resources/sentences/*.json`,
no network): per language, subject and object noun phrases, transitive and intransitive verbs, predicative
adjectives (with their gender forms), place and time adverbials, conjunctions, number phrases and question forms.
Objects carry semantic classes (`"tro:the letter"`: a thing to carry, to read, to open) and a transitive verb may
name the classes it takes (`"reads|read>r"`), so that verbs get sensible objects ("opens the door", not
"opens the music"); a place phrase that names the object's own noun ("the river near the river") is avoided.
A sentence is one clause (subject-verb-object, subject-verb, or subject-copula-adjective), optionally extended by a
place, a time, a number phrase and (for statements) a second clause joined by a conjunction. Questions are yes/no
questions in the language's own form (English do-support, German verb-first, French `est-ce que`, Polish `czy`,
rising intonation in Italian, Spanish and Portuguese) or wh-questions.

Every word in the grammars is checked against the language's alphabet when a grammar is loaded, so sentences hold
no digits (except in number phrases, on purpose), no stray scripts, and no one-letter tokens that espeak-ng would
spell out, other than the language's real one-letter words (Italian `è`, Polish `i`...).
"""

from __future__ import annotations

import functools
import json
import random
from importlib import resources

from mlms_keras.languages import LANGUAGE_CODES, get_language

__all__ = [
    "GRAMMAR_FOR_LANGUAGE",
    "MAX_WORDS",
    "MIN_WORDS",
    "SUPPORTED_LANGUAGES",
    "count_words",
    "generate_sentences",
    "load_grammar",
    "validate_grammar",
    "vocabulary",
]

MIN_WORDS = 4
MAX_WORDS = 16
QUESTION_PROBABILITY = 0.3
NUMBER_PROBABILITY = 0.15
NUMBER_AS_DIGITS_PROBABILITY = 0.5
YEAR_RANGE = (1950, 2025)
_MAX_ATTEMPTS_PER_SENTENCE = 200
_WORD_PUNCTUATION = "'-"  # allowed inside words: l'école, aujourd'hui, est-ce, segunda-feira
_SENTENCE_PUNCTUATION = ",.?¿"

# Which shipped grammar serves each language code of mlms_keras.languages.
GRAMMAR_FOR_LANGUAGE = {
    "en-us": "en",
    "en-gb": "en",
    "fr": "fr",
    "it": "it",
    "de": "de",
    "es": "es",
    "pl": "pl",
    "pt-br": "pt-br",
}
SUPPORTED_LANGUAGES = tuple(code for code in LANGUAGE_CODES if code in GRAMMAR_FOR_LANGUAGE)


def _split_gendered(entry: str) -> tuple[str, str]:
    """`"f:la voisine"` -> `("f", "la voisine")`; entries without a prefix are masculine."""
    if len(entry) > 2 and entry[1] == ":":
        return entry[0], entry[2:]
    return "m", entry


def _split_classes(entry: str, separator: str) -> tuple[str, set[str]]:
    """`"tro:the letter"` (separator `:`) or `"reads|read>r"` (`>`) -> text and set of class letters.

    For objects the classes come first, for verbs last; no classes means any class (verbs) or none (objects).
    """
    if separator == ":":
        classes, found, text = entry.partition(":")
        return (text, set(classes)) if found else (entry, set())
    text, _, classes = entry.partition(">")
    return text, set(classes)


def _adjective_form(adjective: str, gender: str) -> str:
    """Pick the gender form of `"m|f|n"` adjective entries (a single form serves all genders)."""
    forms = adjective.split("|")
    index = {"m": 0, "f": 1, "n": 2}[gender]
    return forms[min(index, len(forms) - 1)]


def _grammar_words(grammar: dict) -> list[str]:
    """Every word the grammar can emit (templates' literal words included), for validation."""
    texts = []
    texts += [_split_gendered(entry)[1] for entry in grammar["subjects"]]
    texts += [_split_classes(entry, ":")[0] for entry in grammar["objects"]]
    texts += grammar["places"] + grammar["times"] + [grammar["copula"]]
    verbs = [_split_classes(verb, ">")[0] for verb in grammar["transitive_verbs"]] + grammar["intransitive_verbs"]
    texts += [form for verb in verbs for form in verb.split("|")]
    texts += [form for adjective in grammar["adjectives"] for form in adjective.split("|")]
    texts += [conjunction.lstrip(", ") for conjunction in grammar["conjunctions"]]
    texts += [phrase["text"] for phrase in grammar["number_phrases"]] + grammar["number_words"]
    texts += grammar["wh_questions"] + grammar["yes_no_question"].get("prefixes", [])
    for key in ("auxiliary", "copula"):
        if key in grammar["yes_no_question"]:
            texts.append(grammar["yes_no_question"][key])
    words = []
    for text in texts:
        for word in text.split():
            if not (word.startswith("{") and word.endswith("}")):
                words.append(word)
    return words


def validate_grammar(grammar: dict, name: str = "<grammar>") -> None:
    """Check that every word a grammar can emit is espeak-friendly text of its language.

    A word must use only the grammar's `alphabet` (any case) plus inner apostrophes and hyphens, hold a letter,
    and be longer than one letter unless listed in `single_letter_words` (real one-letter words such as Italian
    `è`; other single letters would be spelled out by espeak-ng). Every transitive verb must have an object of
    a class it takes.

    Raises:
        ValueError: naming the grammar and every offending word.
    """
    alphabet = set(grammar["alphabet"]) | set(_WORD_PUNCTUATION)
    allowed_single = set(grammar["single_letter_words"])
    problems = []
    for word in _grammar_words(grammar):
        lowered = word.lower()
        if not set(lowered) <= alphabet:
            problems.append(f"{word!r} has characters outside the alphabet")
        elif len(lowered) == 1 and lowered not in allowed_single:
            problems.append(f"{word!r} is a single letter that espeak-ng would spell out")
        elif not any(character.isalpha() for character in lowered):
            problems.append(f"{word!r} has no letters")
    object_classes = [_split_classes(entry, ":")[1] for entry in grammar["objects"]]
    for verb in grammar["transitive_verbs"]:
        verb_text, verb_classes = _split_classes(verb, ">")
        if verb_classes and not any(verb_classes & classes for classes in object_classes):
            problems.append(f"transitive verb {verb_text!r} takes classes {sorted(verb_classes)} that no object has")
    if problems:
        raise ValueError(f"Sentence grammar {name} is invalid: " + "; ".join(problems) + ". Fix the grammar file.")


@functools.cache
def _load_grammar(name: str) -> dict:
    text = resources.files("mlms_keras").joinpath("resources", "sentences", f"{name}.json").read_text("utf-8")
    grammar = json.loads(text)
    validate_grammar(grammar, f"mlms_keras/resources/sentences/{name}.json")
    return grammar


def load_grammar(language: str) -> dict:
    """Return (a copy of) the validated sentence grammar used for `language`.

    Raises:
        ValueError: unknown language code, or a registered language without a shipped grammar.
    """
    get_language(language)  # unknown codes get the language universe's own error
    if language not in GRAMMAR_FOR_LANGUAGE:
        raise ValueError(
            f"No sentence grammar for language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}. "
            "Add a grammar under mlms_keras/resources/sentences/ and map it in GRAMMAR_FOR_LANGUAGE."
        )
    return json.loads(json.dumps(_load_grammar(GRAMMAR_FOR_LANGUAGE[language])))


def vocabulary(language: str) -> set[str]:
    """All lower-cased words the generator can emit for `language` (number digits aside)."""
    return {word.lower() for word in _grammar_words(load_grammar(language))}


def _word_count(parts: list[str]) -> int:
    return sum(len(part.split()) for part in parts)


class _SentenceBuilder:
    """Builds one sentence from a grammar and a `random.Random`."""

    def __init__(self, grammar: dict, rng: random.Random):
        self.grammar = grammar
        self.rng = rng

    def choose(self, key: str) -> str:
        return self.rng.choice(self.grammar[key])

    def transitive_verb_and_object(self) -> tuple[str, str, str]:
        """A transitive verb (finite and base form) and an object of a class the verb takes."""
        verb, verb_classes = _split_classes(self.choose("transitive_verbs"), ">")
        finite, _, base = verb.partition("|")
        objects = [_split_classes(entry, ":") for entry in self.grammar["objects"]]
        fitting = [text for text, classes in objects if not verb_classes or verb_classes & classes]
        return finite, base or finite, self.rng.choice(fitting)

    def clause(self) -> dict:
        """A clause as its parts: subject, its gender, verb (finite and base forms) and the rest."""
        gender, subject = _split_gendered(self.choose("subjects"))
        kind = self.rng.choice(["transitive", "intransitive", "copula"])
        if kind == "transitive":
            finite, base, rest = self.transitive_verb_and_object()
        elif kind == "intransitive":
            finite, _, base = self.choose("intransitive_verbs").partition("|")
            rest = ""
        else:
            finite = base = self.grammar["copula"]
            rest = _adjective_form(self.choose("adjectives"), gender)
        return {
            "kind": kind,
            "subject": subject,
            "gender": gender,
            "finite": finite,
            "base": base or finite,
            "rest": rest,
        }

    @staticmethod
    def statement(clause: dict) -> str:
        return " ".join(part for part in (clause["subject"], clause["finite"], clause["rest"]) if part)

    def yes_no_question(self, clause: dict) -> str:
        form = self.grammar["yes_no_question"]
        parts = []
        if form["form"] == "do_support":
            if clause["kind"] == "copula":
                parts = [form["copula"], clause["subject"], clause["rest"]]
            else:
                parts = [form["auxiliary"], clause["subject"], clause["base"], clause["rest"]]
        elif form["form"] == "invert":
            parts = [clause["finite"], clause["subject"], clause["rest"]]
        elif form["form"] == "prefix":
            parts = [self.rng.choice(form["prefixes"]), self.statement(clause)]
        elif form["form"] == "intonation":
            parts = [self.statement(clause)]
        else:
            raise ValueError(f"Unknown yes_no_question form {form['form']!r} in the sentence grammar.")
        return " ".join(part for part in parts if part)

    def wh_question(self) -> str:
        gender, subject = _split_gendered(self.choose("subjects"))
        transitive_finite, transitive_base, object_text = self.transitive_verb_and_object()
        intransitive_finite, _, intransitive_base = self.choose("intransitive_verbs").partition("|")
        slots = {
            "{S}": subject,
            "{O}": object_text,
            "{VT}": transitive_finite,
            "{VT_base}": transitive_base,
            "{VI}": intransitive_finite,
            "{VI_base}": intransitive_base or intransitive_finite,
            "{ADJ}": _adjective_form(self.choose("adjectives"), gender),
        }
        words = [slots.get(word, word) for word in self.choose("wh_questions").split()]
        return " ".join(words)

    def number_phrase(self) -> str:
        phrase = self.rng.choice(self.grammar["number_phrases"])
        if "{year}" in phrase["text"]:
            return phrase["text"].replace("{year}", str(self.rng.randint(*YEAR_RANGE)))
        value = self.rng.randint(phrase["min"], phrase["max"])
        number_words = self.grammar["number_words"]
        as_digits = self.rng.random() < NUMBER_AS_DIGITS_PROBABILITY or value >= len(number_words)
        return phrase["text"].replace("{n}", str(value) if as_digits else number_words[value])

    def place_avoiding(self, core: str) -> str:
        """A place phrase that does not repeat a noun of `core` (no "the river near the river")."""
        stems = {word.lower()[:4] for word in core.split() if len(word) >= 4}
        places = [
            place
            for place in self.grammar["places"]
            if not stems & {word.lower()[:4] for word in place.split() if len(word) >= 4}
        ]
        return self.rng.choice(places or self.grammar["places"])

    def adverbials(self, core: str, target_words: int, include_number: bool) -> list[str]:
        """Place/time/number phrases, in the language's order, added while the sentence is shorter than target."""
        chosen = {}
        if include_number:
            chosen["number"] = self.number_phrase()
        for kind in self.rng.sample(["place", "time"], 2):
            if _word_count([core] + list(chosen.values())) >= target_words:
                break
            chosen[kind] = self.place_avoiding(core) if kind == "place" else self.choose("times")
        return [chosen[kind] for kind in self.grammar["adverbial_order"] if kind in chosen]

    def sentence(self, target_words: int, is_question: bool, include_number: bool) -> str:
        grammar = self.grammar
        if is_question:
            core = self.wh_question() if self.rng.random() < 0.4 else self.yes_no_question(self.clause())
            body = " ".join([core] + self.adverbials(core, target_words, include_number))
            return grammar["question_open"] + body[0].upper() + body[1:] + grammar["question_close"]
        core = self.statement(self.clause())
        body = " ".join([core] + self.adverbials(core, target_words, include_number))
        if _word_count([body]) < target_words - 2:
            second = self.statement(self.clause())
            conjunction = self.choose("conjunctions")
            candidate = body + conjunction + " " + second
            if _word_count([candidate]) <= MAX_WORDS:
                body = candidate
        return body[0].upper() + body[1:] + grammar["statement_close"]


def count_words(sentence: str) -> int:
    """Number of whitespace-separated words in a sentence (punctuation is attached to words)."""
    return len(sentence.split())


def generate_sentences(language: str, count: int, seed: int) -> list[str]:
    """Generate `count` distinct sentences of 4-16 words in `language`, deterministically for `seed`.

    About 30 % are questions and about 15 % hold a number (a year in digits, or a count written as digits or as a
    number word). The same `(language, seed)` always gives the same sentences, on any machine and Python >= 3.10,
    and a longer request extends a shorter one: `generate_sentences(l, n, s)` is the first `n` of
    `generate_sentences(l, n + k, s)`. That lets a corpus build resume or grow without changing earlier text.

    Args:
        language: a code of :data:`SUPPORTED_LANGUAGES` (`"en-us"`, `"en-gb"`, `"fr"`, `"it"`, `"de"`,
            `"es"`, `"pl"`, `"pt-br"`).
        count: number of sentences (>= 0).
        seed: any integer.

    Returns:
        `count` sentences, each starting with a capital letter and ending in `.` or `?`.

    Raises:
        ValueError: unknown language, negative count, or a grammar too small to give `count` distinct sentences.
    """
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}.")
    grammar = load_grammar(language)
    # String seeds are hashed with SHA-512 by random.seed, so this is stable across processes and platforms.
    rng = random.Random(f"mlms-keras/sentences/{language}/{int(seed)}")
    builder = _SentenceBuilder(grammar, rng)
    sentences: list[str] = []
    seen: set[str] = set()
    while len(sentences) < count:
        for _ in range(_MAX_ATTEMPTS_PER_SENTENCE):
            target_words = rng.randint(MIN_WORDS, MAX_WORDS)
            is_question = rng.random() < QUESTION_PROBABILITY
            include_number = rng.random() < NUMBER_PROBABILITY
            sentence = builder.sentence(target_words, is_question, include_number)
            if MIN_WORDS <= count_words(sentence) <= MAX_WORDS and sentence not in seen:
                break
        else:
            raise ValueError(
                f"Could not find {count} distinct sentences for {language!r} (stopped at {len(sentences)}); "
                "ask for fewer or enlarge the grammar."
            )
        seen.add(sentence)
        sentences.append(sentence)
    return sentences
