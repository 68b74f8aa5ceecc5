"""The espeak-ng binding, with the real libespeak-ng of the espeakng-loader wheel (no mocks)."""

import subprocess
import sys

import numpy as np
import pytest

from mlms_keras.frontend import espeak
from mlms_keras.languages import LANGUAGE_CODES, Language, get_language, register_language

# Hand-written broad transcriptions (textbook pronunciations, stress marks left out).
KNOWN_WORDS = {
    "en-us": ("cat", "kæt"),
    "en-gb": ("car", "kɑː"),  # non-rhotic: no final r
    "fr": ("bonjour", "bɔ̃ʒuʁ"),
    "it": ("casa", "kaza"),
    "de": ("Buch", "buːx"),
    "es": ("casa", "kasa"),
    "pl": ("dzień", "dʑɛɲ"),
    "pt-br": ("tia", "tʃi"),  # Brazilian palatalised t before i
}


@pytest.mark.parametrize("language", LANGUAGE_CODES)
def test_every_language_phonemises_a_known_word(language):
    word, expected_ipa = KNOWN_WORDS[language]
    utterance = espeak.analyze(word, language)
    ipa = "".join(phoneme.ipa for phoneme in utterance.phonemes)
    assert ipa.startswith(expected_ipa)
    assert utterance.language == language
    # Every symbol belongs to the language's own espeak-ng phoneme table.
    inventory = espeak.phoneme_inventory(language)
    assert all(phoneme.symbol in inventory for phoneme in utterance.phonemes)


def test_us_and_uk_english_differ_in_rhoticity():
    us = "".join(p.ipa for p in espeak.analyze("car", "en-us").phonemes)
    uk = "".join(p.ipa for p in espeak.analyze("car", "en-gb").phonemes)
    assert us.endswith("ɹ") and not uk.endswith("ɹ")


def test_stress_and_syllables_of_hello():
    # "hello" = /hə.ˈloʊ/: two syllables, primary stress on the second; one consonant between the vowels
    # starts the second syllable.
    (word,) = espeak.analyze("hello", "en-us").words
    assert [[p.symbol for p in syllable.phonemes] for syllable in word.syllables] == [["h", "@"], ["l", "oU"]]
    assert [syllable.stress for syllable in word.syllables] == [0, 1]


def test_two_consonants_between_vowels_split_one_and_one():
    # Italian "tanto" = tan.to: the first of two consonants closes the first syllable.
    (word,) = espeak.analyze("tanto", "it").words
    assert [[p.symbol for p in syllable.phonemes] for syllable in word.syllables] == [["t", "a", "n"], ["t", "o"]]


def test_phrases_words_and_question_marks():
    utterance = espeak.analyze("Hello world. How are you?", "en-us")
    assert [phrase.terminator for phrase in utterance.phrases] == [".", "?"]
    assert [phrase.is_question for phrase in utterance.phrases] == [False, True]
    assert [len(phrase.words) for phrase in utterance.phrases] == [2, 3]


def test_numbers_expand_into_words():
    utterance = espeak.analyze("I have 23 cats.", "en-us")
    # "I have twenty three cats": 5 phonemised words.
    assert len(utterance.words) == 5


def test_geminate_is_the_base_phoneme_marked_lengthened():
    phonemes = espeak.analyze("gatto", "it").phonemes
    assert [p.symbol for p in phonemes] == ["g", "a", "t", "o"]
    assert [p.lengthened for p in phonemes] == [False, False, True, False]


def test_phoneme_inventory_reads_language_specific_phonemes():
    polish = espeak.phoneme_inventory("pl")
    english = espeak.phoneme_inventory("en-us")
    # Polish alveolo-palatal affricates exist in Polish only; English has its dental fricative "T".
    assert {"ts;", "dz;"} <= set(polish) and not {"ts;", "dz;"} & set(english)
    assert english["T"] == "fricative" and english["i:"] == "vowel" and english["n"] == "nasal"
    assert not any(symbol.startswith("_") for symbol in english)  # pauses are not phonemes


def test_selecting_an_alias_that_espeak_rejects_raises():
    # The trap: espeak_SetVoiceByName("en-gb") fails and silently keeps the previous voice.
    trap = register_language(Language("xx-trap-gb", "Trap", "en-gb", "en-gb", "en", "training"))
    espeak.select_voice("en-us")
    with pytest.raises(espeak.VoiceSelectionError, match="en-gb"):
        espeak.select_voice(trap.code)
    with pytest.raises(espeak.VoiceSelectionError):
        espeak.analyze("hello", trap.code)


def test_voice_reporting_another_language_raises():
    # "en" selects fine but reports en-gb, not en-us.
    wrong = register_language(Language("xx-wrong", "Wrong", "en", "en-us", "en-us", "training"))
    with pytest.raises(espeak.VoiceSelectionError, match="selected language 'en-gb'"):
        espeak.select_voice(wrong.code)


def test_unknown_variant_and_unknown_language_raise():
    with pytest.raises(espeak.VoiceSelectionError):
        espeak.select_voice("fr", "no-such-variant")
    with pytest.raises(ValueError, match="Unknown language code 'xx'"):
        espeak.analyze("hello", "xx")


def test_every_paper_language_voice_selects_with_its_espeak_language():
    for code in LANGUAGE_CODES:
        espeak.select_voice(code, "f1")  # raises on any mismatch
    assert get_language("en-gb").espeak_voice == "en"


def test_synthesis_events_cover_the_analysed_phonemes():
    text = "Bonjour, les amis."
    result = espeak.synthesize(text, "fr", espeak.SpeakerVoice("f3", 170, 50, 50))
    assert result.sample_rate == 22050
    spoken = [espeak.split_event_symbol(event.symbol, "fr") for event in result.events]
    assert [s for s in spoken if s] == [p.symbol for p in espeak.analyze(text, "fr").phonemes]
    starts = [event.start_sample for event in result.events]
    assert starts == sorted(starts) and starts[0] >= 0 and starts[-1] <= len(result.waveform)
    # Speech, not silence: RMS well above the 16-bit noise floor.
    assert float(np.sqrt(np.mean(result.waveform**2))) > 0.01
    # A comma makes a pause inside the utterance.
    assert any(event.symbol.startswith("_") for event in result.events[: len(result.events) // 2 + 2])


def test_events_stay_complete_after_many_voice_changes_without_synthesis():
    # Each voice change queues a sample-rate event that only the next synthesis delivers; dozens of them (what
    # `mlms prepare` does when it analyses utterances of alternating languages) used to push the first
    # phoneme events out of the first audio chunk's event list.
    for _ in range(40):
        for language, text in (("de", "Guten Tag."), ("it", "Buongiorno."), ("en-us", "Good morning.")):
            espeak.analyze(text, language)
    text = "Bonjour, les amis."
    result = espeak.synthesize(text, "fr", espeak.SpeakerVoice("f3", 170, 50, 50))
    spoken = [espeak.split_event_symbol(event.symbol, "fr") for event in result.events]
    assert [s for s in spoken if s] == [p.symbol for p in espeak.analyze(text, "fr").phonemes]


def test_rate_changes_duration_and_variant_changes_the_waveform():
    text = "The weather is nice today."
    slow = espeak.synthesize(text, "en-us", espeak.SpeakerVoice("", 120))
    fast = espeak.synthesize(text, "en-us", espeak.SpeakerVoice("", 240))
    # Twice the words per minute: much shorter (pauses are not scaled exactly).
    assert len(fast.waveform) < 0.7 * len(slow.waveform)
    female = espeak.synthesize(text, "en-us", espeak.SpeakerVoice("f2", 120))
    assert not np.array_equal(female.waveform[: len(slow.waveform)], slow.waveform[: len(female.waveform)])


_FRESH_PROCESS_SYNTHESIS = """
import hashlib, sys
from mlms_keras.frontend import espeak
result = espeak.synthesize("Guten Tag, wie geht es Ihnen?", "de", espeak.SpeakerVoice("f2", 170, 40, 60), random_seed=7)
print(hashlib.sha256(result.waveform.tobytes()).hexdigest(), [(e.symbol, e.start_sample) for e in result.events])
"""


def test_synthesis_in_a_fresh_process_is_byte_exact():
    outputs = [
        subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS_SYNTHESIS], capture_output=True, text=True, check=True, timeout=120
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 64


def test_phonemes_and_events_do_not_depend_on_earlier_calls():
    voice = espeak.SpeakerVoice("m3", 170, 40, 60)
    first = espeak.synthesize("Guten Tag, wie geht es Ihnen?", "de", voice)
    espeak.synthesize("Something else entirely!", "en-us", espeak.SpeakerVoice("f2", 150, 60, 70))
    second = espeak.synthesize("Guten Tag, wie geht es Ihnen?", "de", voice)
    assert [e.symbol for e in first.events] == [e.symbol for e in second.events]
    # Sample-level state (glottal phase, flutter) may shift the length by less than a few pitch periods.
    assert abs(len(first.waveform) - len(second.waveform)) < 0.02 * 22050


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("?!... ,", "no letters or digits"),
        ("Bonjour Привет", "outside the LATIN script"),
        ("word " * 500, "split it into sentences"),
    ],
)
def test_bad_text_raises_a_clear_error(text, message):
    with pytest.raises(espeak.FrontendInputError, match=message):
        espeak.analyze(text, "fr")
    with pytest.raises(espeak.FrontendInputError, match=message):
        espeak.synthesize(text, "fr")


def test_non_string_text_raises():
    with pytest.raises(espeak.FrontendInputError, match="must be a string"):
        espeak.analyze(None, "en-us")


def test_accented_latin_letters_are_accepted():
    utterance = espeak.analyze("Ça coûte 3 euros, señor.", "fr")
    assert len(utterance.words) >= 4


def test_the_frontend_loads_without_tensorflow():
    code = (
        "import sys\n"
        "from mlms_keras.frontend import espeak, labels, layout, linguistic\n"
        "espeak.analyze('Hello.', 'en-us')\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["False", "False"]


# Languages beyond the paper's eight (open frontend rules) ---------------------------------------------------------

NEW_LANGUAGE_TEXTS = {
    "sv": "Hej på dig, hur mår du?",
    "cs": "Dobrý den, jak se máte?",
    "nl": "Goedemorgen, hoe gaat het met je?",
    "ru": "Привет, как дела?",
    "el": "Καλημέρα, τι κάνεις;",
    "hi": "नमस्ते, आप कैसे हैं?",
    "ar": "مرحبا، كيف حالك؟",
    "ko": "안녕하세요, 잘 지내요?",
}


@pytest.mark.parametrize("language", sorted(NEW_LANGUAGE_TEXTS))
def test_new_languages_phonemise_with_ipa_and_match_the_phoneme_events(language):
    text = NEW_LANGUAGE_TEXTS[language]
    utterance = espeak.analyze(text, language)
    inventory = espeak.phoneme_inventory(language)
    assert len(utterance.phrases) == 2 and len(utterance.phonemes) >= 8
    assert all(phoneme.symbol in inventory for phoneme in utterance.phonemes)
    with_ipa = [phoneme for phoneme in utterance.phonemes if phoneme.ipa]
    assert len(with_ipa) >= 0.85 * len(utterance.phonemes)
    assert [phrase.is_question for phrase in utterance.phrases] == [False, True]
    spoken = [espeak.split_event_symbol(event.symbol, language) for event in espeak.synthesize(text, language).events]
    assert [s for s in spoken if s] == [p.symbol for p in utterance.phonemes]


def test_russian_palatalised_consonants_keep_their_ipa():
    # espeak-ng writes the palatalisation mark ";" as a mnemonic token of its own but glues ʲ onto the consonant
    # in the IPA; the open rules align the two (the paper rules would blank the whole word's IPA).
    phonemes = espeak.analyze("Привет", "ru").phonemes
    assert [(p.symbol, p.ipa) for p in phonemes if p.symbol in ("r", ";", "v")] == [
        ("r", "rʲ"),
        (";", "ʲ"),
        ("v", "vʲ"),
        (";", "ʲ"),
    ]
    assert all(p.ipa for p in espeak.analyze("Я тебя люблю", "ru").phonemes)


def test_paper_languages_keep_their_frozen_token_rules():
    # Polish has ";" tokens too; its words keep today's blank IPA, or the shipped voice's output would change.
    assert [(p.symbol, p.ipa) for p in espeak.analyze("Kiedy", "pl").phonemes] == [
        ("k", ""),
        (";", ""),
        ("E", ""),
        ("d", ""),
        ("y", ""),
    ]
    assert "214" not in espeak.phoneme_inventory("en-us") and not espeak.pause_marks("pl")


def test_tones_become_phonemes_after_their_vowel():
    utterance = espeak.analyze("你好，我是中国人。", "cmn")
    (ni_hao,) = utterance.phrases[0].words
    assert [[(p.symbol, p.ipa, p.kind) for p in syllable.phonemes] for syllable in ni_hao.syllables] == [
        [("n", "n", "nasal"), ("i", "i", "vowel"), ("214", "", "tone")],
        [("X", "χ", "fricative"), ("Au", "ɑu", "vowel"), ("214", "", "tone")],
    ]
    assert espeak.phoneme_inventory("cmn")["214"] == espeak.TONE_KIND
    vietnamese = espeak.analyze("Xin chào", "vi").phonemes
    assert [p.symbol for p in vietnamese] == ["s", "i", "n", "tS", "a:", "2", "w"]
    assert not any(character.isdigit() for p in vietnamese for character in p.ipa)
    # Tones are not phoneme events: espeak-ng reports the vowel alone.
    spoken = [espeak.split_event_symbol(e.symbol, "vi") for e in espeak.synthesize("Xin chào", "vi").events]
    assert [s for s in spoken if s] == [p.symbol for p in vietnamese if p.kind != espeak.TONE_KIND]


def test_a_word_read_as_another_language_is_refused():
    with pytest.raises(espeak.ForeignWordError, match="reads a word of .* as 'en', not 'nl'"):
        espeak.analyze("De website is online.", "nl")
    assert issubclass(espeak.ForeignWordError, espeak.FrontendInputError)


def test_pause_marks_and_ipa_spellings_of_new_languages():
    # Dutch "!" after a word is a pause-type phoneme: a pause in the analysis and in the events.
    assert "!" in espeak.pause_marks("nl")
    text = "omdat toen"
    analysed = [p.symbol for p in espeak.analyze(text, "nl").phonemes]
    spoken = [espeak.split_event_symbol(e.symbol, "nl") for e in espeak.synthesize(text, "nl").events]
    assert "!" not in analysed and [s for s in spoken if s] == analysed
    # espeak-ng writes Danish ?E in IPA as Greek epsilon; the frontend spells it as IPA ɛ.
    assert [p.ipa for p in espeak.analyze("med", "da").phonemes] == ["m", "ɛ", "ð"]
    # Other scripts' clause ends: the Devanagari danda, the Arabic question mark.
    assert [ph.terminator for ph in espeak.analyze("नमस्ते। आप कैसे हैं?", "hi").phrases] == [".", "?"]


def test_feature_layouts_cover_new_languages():
    from mlms_keras.frontend.layout import FeatureLayout, default_layout

    layout = FeatureLayout.for_languages(["sv", "ru", "el", "hi", "cmn"])
    features = layout.phoneme_features("Привет, как дела?", "ru")
    assert features.shape[1] == layout.dimension and features.any()
    paper = default_layout()
    wider = paper.add_language("sv").add_language("ko")
    assert wider.feature_names[: paper.dimension] == paper.feature_names  # the paper's dimensions never move
    assert wider.languages == LANGUAGE_CODES + ("sv", "ko")
    assert wider.phoneme_features("안녕하세요.", "ko").shape[1] == wider.dimension
