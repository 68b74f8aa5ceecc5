"""The language universe (every bundled espeak-ng voice) and script checks, with the real espeak-ng data."""

import re
import subprocess
import sys

import pytest

import mlms_keras.languages as languages_module
from mlms_keras.frontend import espeak
from mlms_keras.languages import (
    ADAPTATION,
    ADAPTATION_LANGUAGE_CODES,
    LANGUAGE_CODES,
    LANGUAGES,
    OPEN_RULES,
    PAPER_RULES,
    TRAINING,
    TRAINING_LANGUAGE_CODES,
    Language,
    all_language_codes,
    all_languages,
    get_language,
    register_language,
    unusable_voices,
)

# The paper's eight, exactly as published before the universe opened (models and layouts store them).
PAPER_ENTRIES = [
    ("en-us", "US English", "en-us", "en-us", "en-us", TRAINING),
    ("en-gb", "UK English", "en", "en-gb", "en", TRAINING),
    ("fr", "French", "fr", "fr-fr", "fr", TRAINING),
    ("it", "Italian", "it", "it", "it", TRAINING),
    ("de", "German", "de", "de", "de", TRAINING),
    ("es", "Spanish", "es", "es", "es", TRAINING),
    ("pl", "Polish", "pl", "pl", "pl", ADAPTATION),
    ("pt-br", "Brazilian Portuguese", "pt-br", "pt-br", "pt", ADAPTATION),
]


def _shipped() -> list[Language]:
    """The universe without the languages tests register (their codes start with "xx-")."""
    return [language for language in all_languages() if not language.code.startswith("xx-")]


def test_the_universe_has_every_usable_bundled_voice():
    # 141 voice files in espeakng-loader 0.2.4: en is en-gb, and fo, kaa, xex have no dictionary.
    languages = _shipped()
    codes = [x.code for x in languages]
    assert len(languages) == 138 and len(set(all_language_codes())) == len(all_language_codes())
    assert set(unusable_voices()) == {"fo", "kaa", "xex"}
    assert {"sv", "cs", "nl", "ru", "el", "hi", "ar", "ko", "ja", "cmn", "vi", "en-gb-x-rp"} <= set(codes)
    assert "en" not in codes and not set(unusable_voices()) & set(codes)
    assert all(language.role == ADAPTATION for language in languages[8:])
    assert all(language.frontend_rules == OPEN_RULES for language in languages[8:])


def test_the_paper_languages_are_unchanged():
    assert [
        (x.code, x.display_name, x.espeak_voice, x.espeak_language, x.phoneme_table, x.role) for x in LANGUAGES
    ] == PAPER_ENTRIES
    assert all(x.scripts == ("LATIN",) and x.frontend_rules == PAPER_RULES for x in LANGUAGES)
    assert all_languages()[:8] == LANGUAGES
    assert LANGUAGE_CODES == ("en-us", "en-gb", "fr", "it", "de", "es", "pl", "pt-br")
    assert TRAINING_LANGUAGE_CODES == ("en-us", "en-gb", "fr", "it", "de", "es")
    assert ADAPTATION_LANGUAGE_CODES == ("pl", "pt-br")
    assert get_language("en-gb") is LANGUAGES[1]


def test_bundled_languages_carry_their_espeak_facts():
    russian = get_language("ru")
    assert (russian.display_name, russian.espeak_voice, russian.espeak_language, russian.phoneme_table) == (
        "Russian",
        "ru",
        "ru",
        "ru",
    )
    assert get_language("ru").scripts == ("CYRILLIC",)
    assert get_language("ja").scripts == ("HIRAGANA", "KATAKANA")
    assert get_language("sr").scripts == ("CYRILLIC", "LATIN")
    assert get_language("cmn").scripts == ("CJK",)
    assert get_language("hyw").phoneme_table == "hy"  # a voice with its own phonemes line
    assert get_language("pt").phoneme_table == "pt-pt" and get_language("pt").espeak_language == "pt"


def test_every_language_selects_its_voice_and_has_an_inventory():
    for language in _shipped():
        espeak.select_voice(language.code)  # checks the return code and the reported language
        assert espeak.phoneme_inventory(language.code), language.code


def test_unknown_codes_suggest_the_closest_ones():
    with pytest.raises(ValueError, match=r"Unknown language code 'en'\. Did you mean 'en-us', 'en-gb'\?"):
        get_language("en")
    with pytest.raises(ValueError, match="Did you mean 'sv'"):
        get_language("SV")
    with pytest.raises(ValueError, match="Did you mean 'pt-br'"):
        get_language("pt_BR")
    with pytest.raises(ValueError, match="Did you mean 'el'"):
        get_language("greek")
    with pytest.raises(ValueError, match="Did you mean 'cmn', 'yue'"):
        get_language("zh")
    with pytest.raises(ValueError, match=r"`mlms languages` to list all \d+ codes"):
        get_language("qqq")


def test_voices_without_a_dictionary_are_refused_by_name():
    with pytest.raises(ValueError, match="'fo' is not supported.*no pronunciation dictionary.*fo_dict"):
        get_language("fo")
    with pytest.raises(ValueError, match="cannot use espeak-ng voice 'kaa'"):
        register_language(Language("xx-kaa", "Karakalpak", "kaa", "kaa", "kaa", ADAPTATION))


def test_register_language_keeps_bundled_codes_and_adds_new_ones(monkeypatch):
    monkeypatch.setattr(languages_module, "_BY_CODE", dict(languages_module._BY_CODE))  # registered for this test
    with pytest.raises(ValueError, match="already defined"):
        register_language(Language("sv", "Svenska", "sv", "sv", "sv", ADAPTATION))
    assert register_language(get_language("sv")) == get_language("sv")
    extra = register_language(
        Language("xx-scots", "Scots test", "en-gb-scotland", "en-gb-scotland", "en-sc", ADAPTATION)
    )
    assert get_language("xx-scots") is extra and all_language_codes()[-1] == "xx-scots"
    with pytest.raises(ValueError, match="frontend_rules"):
        register_language(Language("xx-bad", "Bad", "sv", "sv", "sv", ADAPTATION, frontend_rules="new"))


def test_import_reads_no_voice_files_and_starts_no_espeak():
    code = (
        "import sys\n"
        "import mlms_keras.languages as languages\n"
        "languages.get_language('pl')\n"
        "print(languages._espeak_voices.cache_info().currsize, 'tensorflow' in sys.modules,"
        " 'mlms_keras.frontend.espeak.library' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["0", "False", "False"]


@pytest.mark.parametrize(
    "language, text",
    [
        ("el", "Καλημέρα, τι κάνεις;"),
        ("ru", "Привет, как дела?"),
        ("uk", "Пʼять років."),  # the apostrophe is a modifier letter: script-neutral
        ("sr", "Добар дан, dobar dan."),  # Cyrillic and Latin
        ("hi", "नमस्ते, आप कैसे हैं।"),
        ("ar", "مرحبا، كيف حالك؟"),
        ("cmn", "你好，我是中国人。"),
        ("ja", "こんにちは、カタカナー。"),
        ("ko", "안녕하세요 반갑습니다"),
        ("haw", "Aloha Hawaiʻi."),  # the ʻokina
    ],
)
def test_text_in_the_languages_own_script_is_accepted(language, text):
    assert espeak.validate_text(text, language) == text.strip()
    assert espeak.analyze(text, language).phonemes


@pytest.mark.parametrize(
    "language, text, script, found",
    [
        ("el", "Καλημέρα Привет", "GREEK", "CYRILLIC"),
        ("ru", "Hello", "CYRILLIC", "LATIN"),
        ("hi", "नमस्ते hello", "DEVANAGARI", "LATIN"),
        ("ar", "مرحبا שלום", "ARABIC", "HEBREW"),
        ("cmn", "你好 こんにちは", "CJK", "HIRAGANA"),
        ("ja", "今日は", "HIRAGANA or KATAKANA", "CJK"),  # the ja voice does not read Kanji
        ("fr", "Bonjour Καλημέρα", "LATIN", "GREEK"),
    ],
)
def test_text_in_another_script_is_refused_naming_language_and_script(language, text, script, found):
    name = re.escape(get_language(language).display_name)
    pattern = rf"outside the {script} script of {name} \({language}\): .*\({found}"
    with pytest.raises(espeak.FrontendInputError, match=pattern):
        espeak.validate_text(text, language)
