"""The language universe: one home for the facts about each language the package knows.

Li & Zen (2016), section 3: six training languages (US English, UK English, French, Italian, German,
Spanish) and two adaptation ("testing") languages with limited data (Polish, Brazilian Portuguese).

Each language has a stable short code used everywhere (file names, speaker ids, model language tables,
`mlms say --lang`), the espeak-ng voice that speaks it, the language that voice must report once selected
(espeak-ng's voice-selection trap: `espeak_SetVoiceByName("en-gb")` fails and silently keeps the previous
voice, so every selection is checked against `espeak_language`), and the espeak-ng phoneme table whose
inventory defines the language's phoneme-identity features.

Example:
    >>> from mlms_keras.languages import get_language, TRAINING_LANGUAGE_CODES
    >>> get_language("en-gb").espeak_voice
    'en'
    >>> TRAINING_LANGUAGE_CODES
    ('en-us', 'en-gb', 'fr', 'it', 'de', 'es')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADAPTATION",
    "ADAPTATION_LANGUAGE_CODES",
    "LANGUAGES",
    "LANGUAGE_CODES",
    "TRAINING",
    "TRAINING_LANGUAGE_CODES",
    "Language",
    "get_language",
    "register_language",
]

TRAINING = "training"
ADAPTATION = "adaptation"


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
        role: `"training"` or `"adaptation"` (paper, Table 1).
        script: the Unicode script of the language's letters (`"LATIN"` for all eight paper languages); text
            with letters of another script is rejected by the frontend.
    """

    code: str
    display_name: str
    espeak_voice: str
    espeak_language: str
    phoneme_table: str
    role: str
    script: str = "LATIN"


# Order is part of the contract: the universal feature layout is built in this order, so new languages
# are only ever appended (see `mlms_keras.frontend.layout.FeatureLayout.add_language`).
LANGUAGES: tuple[Language, ...] = (
    Language("en-us", "US English", "en-us", "en-us", "en-us", TRAINING),
    Language("en-gb", "UK English", "en", "en-gb", "en", TRAINING),
    Language("fr", "French", "fr", "fr-fr", "fr", TRAINING),
    Language("it", "Italian", "it", "it", "it", TRAINING),
    Language("de", "German", "de", "de", "de", TRAINING),
    Language("es", "Spanish", "es", "es", "es", TRAINING),
    Language("pl", "Polish", "pl", "pl", "pl", ADAPTATION),
    Language("pt-br", "Brazilian Portuguese", "pt-br", "pt-br", "pt", ADAPTATION),
)

LANGUAGE_CODES: tuple[str, ...] = tuple(language.code for language in LANGUAGES)
TRAINING_LANGUAGE_CODES: tuple[str, ...] = tuple(language.code for language in LANGUAGES if language.role == TRAINING)
ADAPTATION_LANGUAGE_CODES: tuple[str, ...] = tuple(
    language.code for language in LANGUAGES if language.role == ADAPTATION
)

_BY_CODE = {language.code: language for language in LANGUAGES}


def get_language(code: str) -> Language:
    """Return the `Language` with this short code.

    Raises:
        ValueError: naming the unknown code and listing the known ones.
    """
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(
            f"Unknown language code {code!r}. Known codes: {', '.join(LANGUAGE_CODES)}. "
            "Use one of these (they are case-sensitive)."
        ) from None


def register_language(language: Language) -> Language:
    """Make a new language known in this process (for adaptation beyond the paper's eight).

    The shipped universe `LANGUAGES` never changes; a registered language can be looked up with
    `get_language` and added to a feature layout with `FeatureLayout.add_language`.

    Raises:
        ValueError: the code is already taken by a different definition, or the role is unknown.
    """
    if language.role not in (TRAINING, ADAPTATION):
        raise ValueError(f"Language.role must be {TRAINING!r} or {ADAPTATION!r}, got {language.role!r}")
    existing = _BY_CODE.get(language.code)
    if existing is not None and existing != language:
        raise ValueError(f"Language code {language.code!r} is already defined as {existing}; pick another code.")
    _BY_CODE[language.code] = language
    return language
