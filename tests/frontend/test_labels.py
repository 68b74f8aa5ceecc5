"""HTS label and TextGrid reading/writing, frame mapping and alignment discovery."""

import pytest

from mlms_keras.frontend.labels import (
    Segment,
    find_alignment,
    read_alignment,
    read_hts_labels,
    read_textgrid,
    segments_to_frames,
    write_hts_labels,
    write_textgrid,
)

FULL_CONTEXT_LABELS = (
    "0 2150000 x^x-sil+h=@@1_1/A:0_0_0/B:x-x-x@x-x&x-x#x-x$x-x!x-x;x-x|x/C:1+1+2\n"
    "2150000 2900000 x^sil-h+@@=l@1_2/A:0_0_0/B:1-1-2@1-1&1-1#1-1$1-1!0-0;0-0|@@/C:0+1+2\n"
    "2900000 3600000 sil^h-@@+l=ou@2_1/A:0_0_0/B:1-1-2@1-1&1-1#1-1$1-1!0-0;0-0|@@/C:0+1+2\n"
)


def test_full_context_labels_are_read_with_times_in_seconds_and_labels_verbatim(tmp_path):
    path = tmp_path / "utt.lab"
    path.write_text(FULL_CONTEXT_LABELS, encoding="utf-8")
    segments = read_hts_labels(path)
    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 0.215), (0.215, 0.29), (0.29, 0.36)]
    expected_labels = [line.split(" ", 2)[2] for line in FULL_CONTEXT_LABELS.splitlines()]
    assert [s.label for s in segments] == expected_labels


def test_hts_write_uses_exact_100ns_integers_and_round_trips(tmp_path):
    segments = [Segment(0.0, 0.1234567, "sil"), Segment(0.1234567, 0.5, "h"), Segment(0.5, 1.00000005, "@U")]
    path = tmp_path / "out" / "utt.lab"
    write_hts_labels(path, segments)
    # 0.1234567 s = 1,234,567 units; 1.00000005 s = 10,000,000.5 units, which rounds half up to 10,000,001.
    assert path.read_text(encoding="utf-8") == ("0 1234567 sil\n1234567 5000000 h\n5000000 10000001 @U\n")
    back = read_hts_labels(path)
    assert [s.label for s in back] == ["sil", "h", "@U"]
    assert [s.end_s for s in back] == [0.1234567, 0.5, 1.0000001]
    assert not list((tmp_path / "out").glob("*.tmp")), "the atomic write must not leave temporary files"


@pytest.mark.parametrize(
    "content, message",
    [("0 100 a\n100 b\n", "utt.lab:2"), ("0 100 a\n100 5e5 b\n", "utt.lab:2"), ("\n0 100 a\n300 200 b\n", "utt.lab:3")],
)
def test_malformed_hts_line_is_reported_with_file_and_line_number(tmp_path, content, message):
    path = tmp_path / "utt.lab"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_hts_labels(path)


def test_textgrid_round_trip_keeps_times_labels_and_gaps(tmp_path):
    segments = [Segment(0.0, 0.25, "h"), Segment(0.25, 0.4, "@"), Segment(0.55, 0.9, "l")]
    path = tmp_path / "utt.TextGrid"
    write_textgrid(path, segments, tier="phones")
    back = read_textgrid(path)
    expected = [(0.0, 0.25, "h"), (0.25, 0.4, "@"), (0.4, 0.55, ""), (0.55, 0.9, "l")]
    assert [s.label for s in back] == [label for _, _, label in expected]
    assert [(s.start_s, s.end_s) for s in back] == [(a, b) for a, b, _ in expected]
    assert read_alignment(path) == back


def test_textgrid_reader_prefers_the_phones_tier_of_an_mfa_file(tmp_path):
    # A hand-written Montreal Forced Aligner style TextGrid (short format): words tier first, phones second.
    text = (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n0.6\n<exists>\n2\n'
        '"IntervalTier"\n"spk - words"\n0\n0.6\n2\n0\n0.1\n""\n0.1\n0.6\n"hello"\n'
        '"IntervalTier"\n"spk - phones"\n0\n0.6\n3\n0\n0.1\n""\n0.1\n0.3\nHH\n0.3\n0.6\n"AH0"\n'
    ).replace("HH", '"HH"')
    path = tmp_path / "mfa.TextGrid"
    path.write_text(text, encoding="utf-8")
    assert [(s.start_s, s.end_s, s.label) for s in read_textgrid(path)] == [
        (0.0, 0.1, ""),
        (0.1, 0.3, "HH"),
        (0.3, 0.6, "AH0"),
    ]
    assert [s.label for s in read_textgrid(path, tier="spk - words")] == ["", "hello"]
    with pytest.raises(ValueError, match="no tier named 'syllables'"):
        read_textgrid(path, tier="syllables")


def test_segments_to_frames_matches_hand_computed_frames():
    segments = [
        Segment(0.0, 0.0124, "a"),  # 2.48 frames -> boundary at frame 2
        Segment(0.0124, 0.0125, "b"),  # 2.5 rounds half up -> frame 3: 1 frame
        Segment(0.0125, 0.0126, "c"),  # 2.52 -> 3: zero frames, kept
        Segment(0.0126, 0.05, "d"),  # 10.0 -> frame 10
    ]
    assert segments_to_frames(segments, frame_period_ms=5.0) == [(0, 2, "a"), (2, 3, "b"), (3, 3, "c"), (3, 10, "d")]
    assert segments_to_frames([Segment(0.0, 0.034, "x")], frame_period_ms=10.0) == [(0, 3, "x")]


def test_contiguous_segments_cover_every_frame_exactly_once():
    boundaries = [0.0, 0.0031, 0.0074, 0.0125, 0.0199, 0.0201, 0.3333, 0.7501, 1.0]
    segments = [Segment(a, b, f"p{i}") for i, (a, b) in enumerate(zip(boundaries, boundaries[1:]))]
    frames = segments_to_frames(segments)
    covered = [index for start, end, _ in frames for index in range(start, end)]
    assert covered == list(range(0, 200))  # 1.0 s at 5 ms is frames 0..199, each exactly once


def test_segments_to_frames_rejects_overlap_and_bad_period():
    with pytest.raises(ValueError, match="overlap"):
        segments_to_frames([Segment(0.0, 0.2, "a"), Segment(0.1, 0.3, "b")])
    with pytest.raises(ValueError, match="frame_period_ms"):
        segments_to_frames([Segment(0.0, 0.2, "a")], frame_period_ms=0.00001)


def test_find_alignment_looks_beside_the_wav_then_in_labels_folders(tmp_path):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    wav = wavs / "utt1.wav"
    wav.write_bytes(b"")
    assert find_alignment(wav) is None
    sibling_labels = tmp_path / "labels" / "utt1.lab"
    sibling_labels.parent.mkdir()
    sibling_labels.write_text("0 10 a\n")
    assert find_alignment(wav) == sibling_labels
    beside = wavs / "utt1.TextGrid"
    beside.write_text("")
    assert find_alignment(wav) == beside


def test_textgrid_writer_rejects_zero_length_segments_and_reader_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="zero length"):
        write_textgrid(tmp_path / "x.TextGrid", [Segment(0.0, 0.1, "a"), Segment(0.1, 0.1, "b")])
    (tmp_path / "x.txt").write_text("0 1 a\n")
    with pytest.raises(ValueError, match="unknown alignment file type"):
        read_alignment(tmp_path / "x.txt")
    (tmp_path / "x.lab").write_text("0 1000000 a\n")
    assert read_alignment(tmp_path / "x.lab") == [Segment(0.0, 0.1, "a")]
