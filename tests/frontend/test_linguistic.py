"""Linguistic features: layout union, zero padding, add_language, frame expansion, alignment features.

Expectations are hand-computed from the definitions (paper sections 2-3, HTS-style positions) or from set
arithmetic over espeak-ng's phoneme inventories, never read back from the code under test.
"""

import json
import math

import numpy as np
import pytest

from mlms_keras.frontend import espeak
from mlms_keras.frontend.labels import Segment, write_hts_labels, write_textgrid
from mlms_keras.frontend.layout import FeatureLayout, LayoutMismatchError, common_feature_names
from mlms_keras.frontend.linguistic import (
    AlignmentMismatchError,
    coarse_coded_positions,
    expand_to_frames,
    features_for_alignment,
    features_for_label_file,
    normalise_label,
)


@pytest.fixture(scope="module")
def english_french():
    return FeatureLayout.for_languages(["en-us", "fr"])


def _inventory(language):
    return set(espeak.phoneme_inventory(language))


def test_layout_is_the_union_of_the_languages_sets(english_french):
    union = {"sil", "pau"} | _inventory("en-us") | _inventory("fr")
    assert english_french.dimension == len(common_feature_names()) + 5 * len(union)
    assert english_french.frame_dimension == english_french.dimension + 4


def test_a_language_uses_only_its_own_dimensions(english_french):
    french_only = _inventory("fr") - _inventory("en-us")
    assert french_only  # e.g. nasal vowels of French that US English lacks
    english_mask = english_french.language_mask("en-us")
    unused = {english_french.feature_names[i] for i in np.flatnonzero(~english_mask)}
    assert unused == {f"{p}_phoneme={s}" for p in ("LL", "L", "C", "R", "RR") for s in french_only}


def test_english_features_are_zero_on_french_only_dimensions(english_french):
    features = english_french.phoneme_features("Hello world, how are you today?", "en-us")
    mask = english_french.language_mask("en-us")
    assert np.all(features[:, ~mask] == 0)
    # Each row has exactly five identity one-hots (one per quinphone position).
    identity_columns = [i for i, n in enumerate(english_french.feature_names) if "_phoneme=" in n]
    assert np.all(features[:, identity_columns].sum(axis=1) == 5)


def test_add_language_appends_and_never_moves_dimensions(english_french):
    wider = english_french.add_language("de")
    new_symbols = _inventory("de") - _inventory("en-us") - _inventory("fr")
    assert wider.feature_names[: english_french.dimension] == english_french.feature_names
    assert set(wider.feature_names[english_french.dimension :]) == {
        f"{p}_phoneme={s}" for p in ("LL", "L", "C", "R", "RR") for s in new_symbols
    }
    text = "Good morning, my friend."
    narrow_features = english_french.phoneme_features(text, "en-us")
    wide_features = wider.phoneme_features(text, "en-us")
    np.testing.assert_array_equal(wide_features[:, : english_french.dimension], narrow_features)
    assert np.all(wide_features[:, english_french.dimension :] == 0)
    assert english_french.fingerprint != wider.fingerprint
    assert wider.add_language("de") is wider  # adding twice changes nothing


def test_default_universe_order_puts_training_languages_first():
    layout = FeatureLayout.for_languages(["en-us", "pl"])
    polish_only = _inventory("pl") - _inventory("en-us")
    tail = layout.feature_names[-5 * len(polish_only) :]
    assert {name.split("=", 1)[1] for name in tail} == polish_only


def test_hello_world_rows_hand_checked(english_french):
    layout = english_french
    features = layout.phoneme_features("Hello world.", "en-us")
    # sil h @ l oU w 3: l d sil ; hello = h@.'loU, world = 'w3:ld
    symbols = ["sil", "h", "@", "l", "oU", "w", "3:", "l", "d", "sil"]
    assert features.shape == (10, layout.dimension)
    for row, symbol in enumerate(symbols):
        assert features[row, layout.index(f"C_phoneme={symbol}")] == 1
    padded = ["sil", "sil"] + symbols + ["sil", "sil"]
    for row in range(10):
        for offset, position in enumerate(("LL", "L", "C", "R", "RR")):
            assert features[row, layout.index(f"{position}_phoneme={padded[row + offset]}")] == 1

    def value(row, name):
        return features[row, layout.index(name)]

    h, d = 1, 8
    expected_h = {
        "phoneme_position_in_syllable_forward": 1,
        "phoneme_position_in_syllable_backward": 2,
        "phonemes_in_syllable": 2,
        "syllable_position_in_word_forward": 1,
        "syllable_position_in_word_backward": 2,
        "syllables_in_word": 2,
        "syllable_position_in_phrase_forward": 1,
        "syllable_position_in_phrase_backward": 3,
        "syllables_in_phrase": 3,
        "stressed_syllables_before_in_phrase": 0,
        "stressed_syllables_after_in_phrase": 2,
        "word_position_in_phrase_forward": 1,
        "word_position_in_phrase_backward": 2,
        "words_in_phrase": 2,
        "syllables_in_previous_word": 0,
        "syllables_in_next_word": 1,
        "phrase_position_in_utterance_forward": 1,
        "phrases_in_utterance": 1,
        "syllables_in_utterance": 3,
        "words_in_utterance": 2,
        "phrase_ending=statement": 1,
        "phrase_ending=question": 0,
        "syllable_stress=primary": 0,
        "previous_syllable_stressed": 0,
        "next_syllable_stressed": 1,
    }
    for name, expected in expected_h.items():
        assert value(h, name) == expected, name
    expected_d = {
        "phoneme_position_in_syllable_forward": 4,
        "phoneme_position_in_syllable_backward": 1,
        "phonemes_in_syllable": 4,
        "syllables_in_word": 1,
        "syllable_position_in_phrase_forward": 3,
        "syllable_position_in_phrase_backward": 1,
        "stressed_syllables_before_in_phrase": 1,
        "stressed_syllables_after_in_phrase": 0,
        "word_position_in_phrase_forward": 2,
        "word_position_in_phrase_backward": 1,
        "syllables_in_previous_word": 2,
        "syllables_in_next_word": 0,
        "syllable_stress=primary": 1,
        "previous_syllable_stressed": 1,
        "next_syllable_stressed": 0,
    }
    for name, expected in expected_d.items():
        assert value(d, name) == expected, name
    # Silence rows carry identity only.
    structure = [layout.index(n) for n in expected_h]
    assert np.all(features[[0, 9]][:, structure] == 0)
    # panphon: /d/ is a voiced consonant, not syllabic; /oʊ/ is a rounded syllabic vowel.
    assert value(d, "C_articulation=voi") == 1 and value(d, "C_articulation=cons") == 1
    assert value(d, "C_articulation=syl") == -1
    assert value(4, "C_articulation=syl") == 1 and value(4, "C_articulation=round") == 1
    assert value(0, "C_articulation=syl") == 0  # silence has no articulation


def test_question_and_pause_between_phrases(english_french):
    layout = english_french
    features = layout.phoneme_features("Yes, why?", "en-us")
    # sil j E s pau w aI sil
    assert features.shape[0] == 8
    pause_rows = np.flatnonzero(features[:, layout.index("C_phoneme=pau")])
    assert list(pause_rows) == [4]
    assert features[5, layout.index("phrase_ending=question")] == 1
    assert features[1, layout.index("phrase_ending=continuation")] == 1
    assert features[5, layout.index("phrase_position_in_utterance_forward")] == 2


def test_layout_round_trips_through_json(english_french):
    restored = FeatureLayout.from_json(english_french.to_json())
    assert restored.feature_names == english_french.feature_names
    assert restored.fingerprint == english_french.fingerprint
    restored.require_compatible(english_french)
    np.testing.assert_array_equal(
        restored.phoneme_features("Bonjour.", "fr"), english_french.phoneme_features("Bonjour.", "fr")
    )


def test_edited_layout_file_is_rejected(english_french):
    config = json.loads(english_french.to_json())
    config["feature_names"][0], config["feature_names"][1] = config["feature_names"][1], config["feature_names"][0]
    with pytest.raises(ValueError, match="fingerprint"):
        FeatureLayout.from_config(config)
    with pytest.raises(ValueError, match=r"not a feature layout \(format None, expected 'mlms-feature-layout'\)"):
        FeatureLayout.from_config({"feature_names": []})
    config["format_version"] = 2
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        FeatureLayout.from_config(config)


def test_inputs_from_another_layout_are_refused(english_french):
    other = english_french.add_language("es")
    with pytest.raises(LayoutMismatchError) as error:
        english_french.require_compatible(other)
    message = str(error.value)
    assert english_french.fingerprint in message and other.fingerprint in message
    assert f"first difference at dimension {english_french.dimension}" in message
    with pytest.raises(LayoutMismatchError):
        english_french.require_compatible("0123456789abcdef")
    english_french.require_compatible(english_french.fingerprint)


def test_language_outside_the_layout_is_refused(english_french):
    with pytest.raises(ValueError, match="add_language"):
        english_french.phoneme_features("Hallo.", "de")


def _gaussian(x, mean):
    return math.exp(-((x - mean) ** 2) / (2 * 0.4**2)) / (0.4 * math.sqrt(2 * math.pi))


def test_frame_expansion_hand_checked():
    phoneme_features = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    frames = expand_to_frames(phoneme_features, [2, 1])
    assert frames.shape == (3, 6)
    # Frame centres: 0.25 and 0.75 of the first phoneme, 0.5 of the second.
    expected = [
        [1, 2, _gaussian(0.25, 0), _gaussian(0.25, 0.5), _gaussian(0.25, 1), 2],
        [1, 2, _gaussian(0.75, 0), _gaussian(0.75, 0.5), _gaussian(0.75, 1), 2],
        [3, 4, _gaussian(0.5, 0), _gaussian(0.5, 0.5), _gaussian(0.5, 1), 1],
    ]
    np.testing.assert_allclose(frames, np.array(expected), rtol=1e-6)
    # Literal check of one value: N(0.5; 0.5, 0.4^2) = 1 / (0.4 sqrt(2 pi)) = 0.99735570.
    assert frames[2, 3] == pytest.approx(0.99735570, rel=1e-6)


def test_coarse_coding_is_symmetric_in_time():
    codes = coarse_coded_positions(7)
    np.testing.assert_allclose(codes[:, 0], codes[::-1, 2], rtol=1e-6)
    np.testing.assert_allclose(codes[:, 1], codes[::-1, 1], rtol=1e-6)


def test_zero_frame_phonemes_vanish_and_bad_durations_raise():
    frames = expand_to_frames(np.eye(3, dtype=np.float32), [1, 0, 2])
    assert frames.shape == (3, 7)
    np.testing.assert_array_equal(frames[:, :3], [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="non-negative"):
        expand_to_frames(np.eye(2), [1, -1])
    with pytest.raises(ValueError, match="one entry per phoneme"):
        expand_to_frames(np.eye(2), [1, 2, 3])
    with pytest.raises(ValueError, match="whole numbers"):
        expand_to_frames(np.eye(2), [1.5, 2])


def _hello_world_segments():
    # (start s, end s, label): leading silence, a short pause the aligner put between the words, and a
    # trailing pau+sil pair that must merge into one "sil".
    spans = [
        (0.0, 0.1, "sil"),
        (0.1, 0.15, "h"),
        (0.15, 0.2, "@"),
        (0.2, 0.25, "l"),
        (0.25, 0.4, "oU"),
        (0.4, 0.45, "sp"),
        (0.45, 0.5, "w"),
        (0.5, 0.6, "3:"),
        (0.6, 0.65, "l"),
        (0.65, 0.7, "d"),
        (0.7, 0.8, "pau"),
        (0.8, 0.9, "sil"),
    ]
    return [Segment(start, end, label) for start, end, label in spans]


def test_alignment_features_follow_the_alignments_silences(english_french):
    aligned = features_for_alignment("Hello world.", "en-us", _hello_world_segments(), english_french, "utt-7")
    assert aligned.symbols == ["sil", "h", "@", "l", "oU", "pau", "w", "3:", "l", "d", "sil"]
    assert list(aligned.durations_frames) == [20, 10, 10, 10, 30, 10, 10, 20, 10, 10, 40]
    layout = english_french
    w_row = aligned.phoneme_features[6]
    assert w_row[layout.index("L_phoneme=pau")] == 1 and w_row[layout.index("LL_phoneme=oU")] == 1
    assert w_row[layout.index("word_position_in_phrase_forward")] == 2
    frames = expand_to_frames(aligned.phoneme_features, aligned.durations_frames)
    assert frames.shape == (180, layout.frame_dimension)


def test_alignment_with_a_wrong_phone_names_the_utterance(english_french):
    segments = _hello_world_segments()
    segments[9] = Segment(0.65, 0.7, "t")
    with pytest.raises(AlignmentMismatchError, match=r"utt-7: .*first difference at phone 7"):
        features_for_alignment("Hello world.", "en-us", segments, english_french, "utt-7")
    with pytest.raises(AlignmentMismatchError, match="8 phones but the frontend"):
        features_for_alignment("Hello world, again.", "en-us", _hello_world_segments(), english_french, "utt-8")


def test_alignment_in_another_phone_set_by_count(english_french):
    arpabet = ["sil", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D", "pau", "sil"]
    segments = [Segment(s.start_s, s.end_s, label) for s, label in zip(_hello_world_segments(), arpabet)]
    with pytest.raises(AlignmentMismatchError):
        features_for_alignment("Hello world.", "en-us", segments, english_french, "utt-9")
    aligned = features_for_alignment("Hello world.", "en-us", segments, english_french, "utt-9", match="count")
    assert aligned.symbols[1:5] == ["h", "@", "l", "oU"]


def test_label_normalisation():
    assert normalise_label("x^sil-h+@=l@1_2/A:0") == "h"
    assert normalise_label("'oU") == "oU"
    assert normalise_label("e-") == "e-"  # a French espeak-ng vowel, not a full-context label


def test_alignment_of_bad_text_names_the_utterance(english_french):
    with pytest.raises(espeak.FrontendInputError, match="utt-x"):
        features_for_alignment("?!", "en-us", _hello_world_segments(), english_french, "utt-x")


def test_layout_file_round_trip_and_clear_errors(english_french, tmp_path):
    path = tmp_path / "model" / "feature_layout.json"
    english_french.save(path)
    assert FeatureLayout.load(path) == english_french
    assert not list(path.parent.glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="missing.json: no such file; expected a feature layout"):
        FeatureLayout.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        FeatureLayout.load(tmp_path / "broken.json")
    edited = english_french.get_config()
    edited["feature_names"] = edited["feature_names"][::-1]
    (tmp_path / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    with pytest.raises(ValueError, match="edited.json: feature layout fingerprint .* does not match its content"):
        FeatureLayout.load(tmp_path / "edited.json")
    del edited["feature_names"]
    (tmp_path / "incomplete.json").write_text(json.dumps(edited), encoding="utf-8")
    with pytest.raises(ValueError, match="incomplete.json: not a valid feature layout .*'feature_names'"):
        FeatureLayout.load(tmp_path / "incomplete.json")


def test_features_from_hts_and_textgrid_files_agree(english_french, tmp_path):
    segments = _hello_world_segments()
    write_hts_labels(tmp_path / "utt-3.lab", segments)
    write_textgrid(tmp_path / "utt-3.TextGrid", segments)
    from_lab = features_for_label_file("Hello world.", "en-us", tmp_path / "utt-3.lab", english_french)
    from_grid = features_for_label_file("Hello world.", "en-us", tmp_path / "utt-3.TextGrid", english_french)
    np.testing.assert_array_equal(from_lab.phoneme_features, from_grid.phoneme_features)
    assert (
        list(from_lab.durations_frames)
        == list(from_grid.durations_frames)
        == [20, 10, 10, 10, 30, 10, 10, 20, 10, 10, 40]
    )
    with pytest.raises(AlignmentMismatchError, match="utt-3"):
        features_for_label_file("Hello there.", "en-us", tmp_path / "utt-3.lab", english_french)
