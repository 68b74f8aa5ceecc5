"""The language universe: one home for the facts about each language the package knows.

Li & Zen (2016), section 3: six training languages (US English, UK English, French, Italian, German,
Spanish) and two adaptation ("testing") languages with limited data (Polish, Brazilian Portuguese). These eight are
`LANGUAGES`, in this order; their codes, entries and roles never change (models, layouts and prepared datasets
store them).

Beyond the eight, every language the bundled espeak-ng can speak is known too (`all_languages()`): one per voice
file under `espeak-ng-data/lang/`, read lazily on first use (about 140 small text files, no espeak-ng call), with
role `"adaptation"` (they are not in Table 1). Its code is the voice file's name in lower case (`sv`, `ru`,
`en-gb-x-rp`), which is also the name that selects the voice. Three voices have no pronunciation dictionary in the
wheel (`fo`, `kaa`, `xex`): espeak-ng selects them without complaint but phonemises nothing, so they are left out
and `get_language` refuses them by name. The voice `en` is the paper's `en-gb`.

Each language has a stable short code used everywhere (file names, speaker ids, model language tables,
`mlms say --lang`), the espeak-ng voice that speaks it, the language that voice must report once selected
(espeak-ng's voice-selection trap: `espeak_SetVoiceByName("en-gb")` fails and silently keeps the previous
voice, so every selection is checked against `espeak_language`), the espeak-ng phoneme table whose inventory defines
the language's phoneme-identity features, the script(s) its text must be written in, and the frontend rules that
turn espeak-ng's output into phonemes (`PAPER_RULES` for the eight, frozen; `OPEN_RULES` for the rest; see
`Language.frontend_rules`).

Example:
    >>> from mlms_keras.languages import get_language, TRAINING_LANGUAGE_CODES
    >>> get_language("en-gb").espeak_voice
    'en'
    >>> TRAINING_LANGUAGE_CODES
    ('en-us', 'en-gb', 'fr', 'it', 'de', 'es')
    >>> get_language("ru").scripts, get_language("ja").scripts
    (('CYRILLIC',), ('HIRAGANA', 'KATAKANA'))
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader

__all__ = [
    "ADAPTATION",
    "ADAPTATION_LANGUAGE_CODES",
    "LANGUAGES",
    "LANGUAGE_CODES",
    "OPEN_RULES",
    "PAPER_RULES",
    "TRAINING",
    "TRAINING_LANGUAGE_CODES",
    "Language",
    "all_language_codes",
    "all_languages",
    "get_language",
    "register_language",
    "unusable_voices",
]

TRAINING = "training"
ADAPTATION = "adaptation"
#: Frontend rules of the paper's eight languages: today's tokenisation, frozen (see `Language.frontend_rules`).
PAPER_RULES = "paper"
#: Frontend rules of every other language (see `Language.frontend_rules`).
OPEN_RULES = "open"


@dataclass(frozen=True)
class Language:
    """One language of the universe.

    Attributes:
        code: stable short code, e.g. `"en-us"`. Never changes once published (models store it).
        display_name: human readable name, e.g. `"US English"`.
        espeak_voice: the name passed to `espeak_SetVoiceByName`, e.g. `"en"` for UK English.
        espeak_language: the language espeak-ng reports for the selected voice, e.g. `"en-gb"`. A selection
            that reports anything else is an error.
        phoneme_table: the espeak-ng phoneme table (in `phontab`) holding the language's phoneme inventory.
        role: `"training"` or `"adaptation"` (paper, Table 1; every language beyond the eight is `"adaptation"`).
        script: the Unicode script of the language's letters, as the first word of their `unicodedata.name`
            (`"LATIN"` for all eight paper languages, `"CYRILLIC"`, `"CJK"` for Han characters, ...); text with
            letters of another script is rejected by the frontend.
        other_scripts: further scripts the voice reads natively (Serbian: `("LATIN",)` besides Cyrillic;
            Japanese: `("KATAKANA",)` besides Hiragana).
        frontend_rules: how espeak-ng's output becomes phonemes. `"paper"` (the eight languages): the rules the
            shipped voice was trained with, never changed, so their features stay bit-identical (for example a
            Polish word with a palatalisation mark `;` gets no IPA). `"open"` (every other language): also aligns
            the IPA around `;`, splits tone numbers glued to vowels into tone phonemes, refuses words espeak-ng
            reads as another language, and normalises a few IPA spellings (`mlms_keras.frontend.espeak.analysis`).
    """

    code: str
    display_name: str
    espeak_voice: str
    espeak_language: str
    phoneme_table: str
    role: str
    script: str = "LATIN"
    other_scripts: tuple[str, ...] = ()
    frontend_rules: str = OPEN_RULES

    @property
    def scripts(self) -> tuple[str, ...]:
        """Every script the language accepts: `script` first, then `other_scripts`."""
        return (self.script,) + tuple(self.other_scripts)


# Order is part of the contract: the universal feature layout is built in this order, so new languages
# are only ever appended (see `mlms_keras.frontend.layout.FeatureLayout.add_language`).
LANGUAGES: tuple[Language, ...] = (
    Language("en-us", "US English", "en-us", "en-us", "en-us", TRAINING, frontend_rules=PAPER_RULES),
    Language("en-gb", "UK English", "en", "en-gb", "en", TRAINING, frontend_rules=PAPER_RULES),
    Language("fr", "French", "fr", "fr-fr", "fr", TRAINING, frontend_rules=PAPER_RULES),
    Language("it", "Italian", "it", "it", "it", TRAINING, frontend_rules=PAPER_RULES),
    Language("de", "German", "de", "de", "de", TRAINING, frontend_rules=PAPER_RULES),
    Language("es", "Spanish", "es", "es", "es", TRAINING, frontend_rules=PAPER_RULES),
    Language("pl", "Polish", "pl", "pl", "pl", ADAPTATION, frontend_rules=PAPER_RULES),
    Language("pt-br", "Brazilian Portuguese", "pt-br", "pt-br", "pt", ADAPTATION, frontend_rules=PAPER_RULES),
)

LANGUAGE_CODES: tuple[str, ...] = tuple(language.code for language in LANGUAGES)
TRAINING_LANGUAGE_CODES: tuple[str, ...] = tuple(language.code for language in LANGUAGES if language.role == TRAINING)
ADAPTATION_LANGUAGE_CODES: tuple[str, ...] = tuple(
    language.code for language in LANGUAGES if language.role == ADAPTATION
)

_BY_CODE = {language.code: language for language in LANGUAGES}

# Scripts of the voices that do not write Latin, checked by phonemising native text with each voice (a voice that
# meets another script either switches language or spells the letters by name). Keys are language codes; every
# voice not listed reads Latin only. Notes: ja reads kana but not Kanji; hak and chr read romanisations, not Han or
# the Cherokee syllabary; the *-latn-* voices read a romanisation first.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("el", "grc"), ("GREEK",)),
    **dict.fromkeys(
        ("ru", "ru-cl", "ru-lv", "uk", "be", "bg", "mk", "kk", "ky", "tt", "ba", "cv", "nog"), ("CYRILLIC",)
    ),
    "sr": ("CYRILLIC", "LATIN"),
    "uz": ("LATIN", "CYRILLIC"),
    **dict.fromkeys(("hy", "hyw"), ("ARMENIAN",)),
    "ka": ("GEORGIAN",),
    "he": ("HEBREW",),
    **dict.fromkeys(("ar", "fa", "ur", "sd"), ("ARABIC",)),
    "ug": ("ARABIC", "LATIN"),
    **dict.fromkeys(("hi", "mr", "ne", "kok"), ("DEVANAGARI",)),
    **dict.fromkeys(("bn", "as", "bpy"), ("BENGALI",)),
    "pa": ("GURMUKHI",),
    "gu": ("GUJARATI",),
    "or": ("ORIYA",),
    "ta": ("TAMIL",),
    "te": ("TELUGU",),
    "kn": ("KANNADA",),
    "ml": ("MALAYALAM",),
    "si": ("SINHALA",),
    "th": ("THAI",),
    **dict.fromkeys(("my", "shn"), ("MYANMAR",)),
    **dict.fromkeys(("am", "ti"), ("ETHIOPIC",)),
    **dict.fromkeys(("cmn", "yue"), ("CJK",)),
    **dict.fromkeys(("cmn-latn-pinyin", "yue-latn-jyutping"), ("LATIN", "CJK")),
    "ja": ("HIRAGANA", "KATAKANA"),
    "ko": ("HANGUL",),
    "en-shaw": ("SHAVIAN", "LATIN"),
}


def _espeak_data() -> Path:
    return Path(espeakng_loader.get_data_path())


def _read_voice_file(path: Path) -> tuple[str, list[str], str | None, str | None]:
    """An espeak-ng `lang/` file -> `(name, languages, phoneme table, dictionary)` as espeak-ng's LoadVoice reads it.

    The first `language` line names the language; without `phonemes` / `dictionary` lines, both are the part of
    that language before the first "-"; the last `phonemes` line wins.
    """
    name, languages, table, dictionary = path.name, [], None, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "name" and len(parts) > 1:
            name = line.split(None, 1)[1].split("//")[0].strip()
        elif parts[0] == "language" and len(parts) > 1:
            languages.append(parts[1])
        elif parts[0] == "phonemes" and len(parts) > 1:
            table = parts[1]
        elif parts[0] == "dictionary" and len(parts) > 1:
            dictionary = parts[1]
    return name, languages, table, dictionary


@functools.cache
def _espeak_voices() -> tuple[tuple[Language, ...], dict[str, str]]:
    """The bundled voices as `Language`s (sorted by code), and code -> reason for the unusable ones."""
    data = _espeak_data()
    paper_voices = {language.espeak_voice for language in LANGUAGES}
    languages, unusable = [], {}
    for path in sorted((data / "lang").rglob("*")):
        if not path.is_file():
            continue
        name, spoken, table, dictionary = _read_voice_file(path)
        if not spoken:
            continue
        code = path.name.lower()
        if code in paper_voices or code in LANGUAGE_CODES:
            continue  # the paper's own entry (the voice "en" is en-gb)
        base = spoken[0].split("-")[0]
        dictionary = dictionary or base
        if not (data / f"{dictionary}_dict").is_file():
            unusable[code] = (
                f"the bundled espeak-ng voice {code!r} ({name}) has no pronunciation dictionary "
                f"({dictionary}_dict is missing from {data}), so it phonemises nothing"
            )
            continue
        scripts = _SCRIPTS.get(code, ("LATIN",))
        languages.append(
            Language(code, name, code, spoken[0], table or base, ADAPTATION, scripts[0], scripts[1:], OPEN_RULES)
        )
    return tuple(sorted(languages, key=lambda language: language.code)), unusable


@functools.cache
def _bundled_by_code() -> dict[str, Language]:
    return {language.code: language for language in _espeak_voices()[0]}


def all_languages() -> tuple[Language, ...]:
    """Every language the package knows: the paper's eight (in `LANGUAGES` order), then every usable bundled
    espeak-ng voice (sorted by code), then the languages registered in this process.

    The voices are read once, on first call (the `lang/` files of the `espeakng-loader` wheel; no espeak-ng call).
    """
    bundled = _espeak_voices()[0]
    known = {language.code for language in LANGUAGES} | {language.code for language in bundled}
    registered = tuple(language for code, language in _BY_CODE.items() if code not in known)
    return LANGUAGES + bundled + registered


def all_language_codes() -> tuple[str, ...]:
    """The codes of `all_languages()`, in the same order."""
    return tuple(language.code for language in all_languages())


def unusable_voices() -> dict[str, str]:
    """Bundled espeak-ng voices left out of the universe: code -> the reason (no dictionary: `fo`, `kaa`, `xex`)."""
    return dict(_espeak_voices()[1])


def get_language(code: str) -> Language:
    """Return the `Language` with this short code (a paper language, a bundled voice or a registered one).

    Raises:
        ValueError: an unknown code (the message suggests the closest known codes), or a bundled voice that cannot
            phonemise (no dictionary).
    """
    if not isinstance(code, str):
        raise ValueError(f"A language code must be a string such as 'en-us', got {type(code).__name__} {code!r}")
    language = _BY_CODE.get(code) or _bundled_by_code().get(code)
    if language is not None:
        return language
    unusable = _espeak_voices()[1]
    if code in unusable:
        raise ValueError(f"Language {code!r} is not supported: {unusable[code]}. Pick another language.")
    codes = all_language_codes()
    close = _suggestions(code)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"Unknown language code {code!r}. {hint}Run `mlms languages` to list all {len(codes)} codes "
        f"(the paper's: {', '.join(LANGUAGE_CODES)})."
    )


def _suggestions(code: str, count: int = 5) -> list[str]:
    """The known codes closest to an unknown one: aliases, case and separator slips, names, then spelling."""
    codes = all_language_codes()
    wanted = code.strip().lower().replace("_", "-")
    found = [c for c in _ALIASES.get(wanted, ()) if c in codes]
    found += [c for c in (wanted, wanted.split("-")[0]) if c in codes]
    if found:  # a case or separator slip, or a common alias: no need to guess further
        return list(dict.fromkeys(found))[:count]
    words = wanted.replace("-", " ").split()
    if words:  # "english", "portuguese brazil": the languages whose display name has these words
        for language in all_languages():
            name = language.display_name.lower().replace("(", " ").replace(")", " ").replace(",", " ").split()
            if all(any(part.startswith(word) for part in name) for word in words) and len(wanted) > 3:
                found.append(language.code)
    found += difflib.get_close_matches(wanted, codes, n=count, cutoff=0.5)
    return list(dict.fromkeys(found))[:count]


# Codes people often type for a language whose espeak-ng code differs.
_ALIASES = {
    "en": ("en-us", "en-gb"),
    "zh": ("cmn", "yue"),
    "zh-cn": ("cmn",),
    "zh-hk": ("yue",),
    "no": ("nb",),
    "pt-pt": ("pt",),
    "fr-fr": ("fr",),
    "iw": ("he",),
    "sh": ("sr", "hr", "bs"),
}


def register_language(language: Language) -> Language:
    """Make a new language known in this process (a voice of your own espeak-ng data, or a new code).

    The shipped universe never changes; a registered language can be looked up with `get_language` and added to a
    feature layout with `FeatureLayout.add_language`. Registering an equal definition again is fine.

    Raises:
        ValueError: the code is already taken by a different definition (a paper language or a bundled voice),
            the role or frontend rules are unknown, or the voice is a bundled one without a dictionary.
    """
    if language.role not in (TRAINING, ADAPTATION):
        raise ValueError(f"Language.role must be {TRAINING!r} or {ADAPTATION!r}, got {language.role!r}")
    if language.frontend_rules not in (PAPER_RULES, OPEN_RULES):
        raise ValueError(
            f"Language.frontend_rules must be {PAPER_RULES!r} or {OPEN_RULES!r}, got {language.frontend_rules!r}"
        )
    unusable = _espeak_voices()[1].get(language.espeak_voice.lower())
    if unusable is not None:
        raise ValueError(f"Language {language.code!r} cannot use espeak-ng voice {language.espeak_voice!r}: {unusable}")
    existing = _BY_CODE.get(language.code) or _bundled_by_code().get(language.code)
    if existing is not None and existing != language:
        raise ValueError(f"Language code {language.code!r} is already defined as {existing}; pick another code.")
    _BY_CODE[language.code] = language
    return language
