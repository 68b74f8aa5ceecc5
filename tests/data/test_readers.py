"""Corpus readers on tiny corpora built in exactly each layout, with real WAV files."""

import logging

import numpy as np
import pytest
import soundfile

from mlms_keras.data.readers import read_corpus, read_css10, read_mailabs, read_metadata_csv

SAMPLE_RATE = 16000


def write_tone(path, seconds=0.1, frequency_hz=220.0):
    """A real, short PCM-16 WAV file: a sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    time_s = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * frequency_hz * time_s), SAMPLE_RATE, subtype="PCM_16")


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_ljspeech_layout_uses_normalized_text_and_finds_labels(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    write_lines(
        root / "metadata.csv",
        [
            "LJ001-0001|Printing, in the only sense|Printing, in the only sense",
            "LJ001-0002|in 1869 it was|in eighteen sixty-nine it was",
            "LJ001-0003|Dr. Smith said|",
        ],
    )
    for utterance_id in ("LJ001-0001", "LJ001-0002", "LJ001-0003"):
        write_tone(root / "wavs" / f"{utterance_id}.wav")
    (root / "labels").mkdir()
    (root / "labels" / "LJ001-0002.lab").write_text("0 1000000 sil\n")
    (root / "wavs" / "LJ001-0003.TextGrid").write_text("")

    items = read_corpus(root, language="en-us")
    assert [item.utterance_id for item in items] == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert [item.text for item in items] == [
        "Printing, in the only sense",
        "in eighteen sixty-nine it was",
        "Dr. Smith said",
    ]
    assert {item.language for item in items} == {"en-us"} and {item.speaker for item in items} == {"LJSpeech-1.1"}
    assert items[0].wav_path == root.absolute() / "wavs" / "LJ001-0001.wav"
    assert [item.alignment_path for item in items] == [
        None,
        root.absolute() / "labels" / "LJ001-0002.lab",
        root.absolute() / "wavs" / "LJ001-0003.TextGrid",
    ]
    assert items.skipped == []


def test_ljspeech_without_language_is_an_error_that_says_what_to_pass(tmp_path):
    write_lines(tmp_path / "metadata.csv", ["a|hello there|hello there"])
    with pytest.raises(ValueError, match="pass language="):
        read_metadata_csv(tmp_path / "metadata.csv")
    with pytest.raises(ValueError, match="Unknown language code 'english'"):
        read_metadata_csv(tmp_path / "metadata.csv", language="english")


def test_teacher_layout_reads_language_and_speaker_columns(tmp_path):
    write_lines(
        tmp_path / "metadata.csv",
        [
            "en-us_f1_0000|The dog sleeps at home.|en-us|en-us_f1",
            "pl_f1_0000|Czy kot śpi?|pl|pl_f1",
        ],
    )
    write_tone(tmp_path / "wavs" / "en-us_f1_0000.wav")
    write_tone(tmp_path / "wavs" / "pl_f1_0000.wav")
    write_lines(tmp_path / "labels" / "pl_f1_0000.lab", ["0 500000 sil"])
    items = read_corpus(tmp_path)
    assert [(i.utterance_id, i.text, i.language, i.speaker) for i in items] == [
        ("en-us_f1_0000", "The dog sleeps at home.", "en-us", "en-us_f1"),
        ("pl_f1_0000", "Czy kot śpi?", "pl", "pl_f1"),
    ]
    assert items[0].alignment_path is None
    assert items[1].alignment_path == tmp_path.absolute() / "labels" / "pl_f1_0000.lab"


def test_bad_metadata_lines_are_reported_with_line_numbers_and_skipped(tmp_path, caplog):
    write_lines(
        tmp_path / "metadata.csv",
        [
            "u1|Good line.|de|spk",  # 1 ok
            "u2|Too few columns|de",  # 2 column count
            "",  # 3 blank: ignored, not an error
            "u3||de|spk",  # 4 empty text
            "u4|?!...|de|spk",  # 5 punctuation only
            "u5|Hallo Welt.|xx|spk",  # 6 unknown language
            "u6|Keine Audiodatei.|de|spk",  # 7 missing wav
            "u1|Wiederholt.|de|spk",  # 8 repeated id
            "u7|Kaputte Datei.|de|spk",  # 9 unreadable wav
            "u8|Auch gut.|de|spk",  # 10 ok
        ],
    )
    (tmp_path / "metadata.csv").open("ab").write(b"u9|caf\xe9|de|spk\n")  # 11: Latin-1 byte, not UTF-8
    for utterance_id in ("u1", "u2", "u3", "u4", "u5", "u8", "u9"):
        write_tone(tmp_path / "wavs" / f"{utterance_id}.wav")
    (tmp_path / "wavs" / "u7.wav").write_bytes(b"RIFF not really a wav")

    with caplog.at_level(logging.WARNING):
        items = read_metadata_csv(tmp_path / "metadata.csv")
    assert [item.utterance_id for item in items] == ["u1", "u8"]
    assert [entry.line_number for entry in items.skipped] == [2, 4, 5, 6, 7, 8, 9, 11]
    reasons = [entry.reason for entry in items.skipped]
    for expected, reason in zip(
        [
            "columns",
            "empty text",
            "no letters",
            "unknown language",
            "missing wav",
            "repeats",
            "unreadable audio",
            "UTF-8",
        ],
        reasons,
    ):
        assert expected in reason
    assert str(items.skipped[0]).startswith(f"{(tmp_path / 'metadata.csv').absolute()}:2: ")
    assert "metadata.csv:7: missing wav file" in caplog.text


def build_mailabs(root):
    """en_US with a female speaker (two books), a male speaker and a mix book; plus an unsupported ru_RU locale."""
    books = {
        root / "en_US/by_book/female/judy_bieber/dorothy_and_wizard_oz": ["dorothy_01_f000001", "dorothy_01_f000002"],
        root / "en_US/by_book/female/judy_bieber/emerald_city_of_oz": ["emerald_01_f000001"],
        root / "en_US/by_book/male/elliot_miller/hunters_space": ["hunters_01_f000001"],
        root / "en_US/by_book/mix/mix_book": ["mix_01_f000001"],
        root / "ru_RU/by_book/female/hajdurova/sever": ["sever_01_f000001"],
    }
    for book, utterance_ids in books.items():
        write_lines(book / "metadata.csv", [f"{u}|Text of {u}, 12.|Text of {u}, twelve." for u in utterance_ids])
        for utterance_id in utterance_ids:
            write_tone(book / "wavs" / f"{utterance_id}.wav")
    return books


def test_mailabs_layout_maps_locales_genders_speakers_and_mix(tmp_path):
    build_mailabs(tmp_path)
    items = read_corpus(tmp_path)
    triples = [(i.utterance_id, i.speaker, i.gender) for i in items]
    assert triples == [
        ("dorothy_01_f000001", "judy_bieber", "female"),
        ("dorothy_01_f000002", "judy_bieber", "female"),
        ("emerald_01_f000001", "judy_bieber", "female"),
        ("hunters_01_f000001", "elliot_miller", "male"),
        ("mix_01_f000001", "mix-mix_book", "mix"),
    ]
    assert {item.language for item in items} == {"en-us"}
    assert items[0].text == "Text of dorothy_01_f000001, twelve."
    assert (
        items[0].wav_path
        == (
            tmp_path / "en_US/by_book/female/judy_bieber/dorothy_and_wizard_oz/wavs" / "dorothy_01_f000001.wav"
        ).absolute()
    )
    assert len(items.skipped) == 1 and "ru_RU" in items.skipped[0].reason
    # A single locale folder reads the same way.
    assert [i.utterance_id for i in read_mailabs(tmp_path / "en_US")] == [t[0] for t in triples]


def test_css10_layout_reads_transcript_and_reports_bad_lines(tmp_path):
    root = tmp_path / "css10_de"
    write_lines(
        root / "transcript.txt",
        [
            "achtgesichter/achtgesichter_0000.wav|Es war 1 Mal.|Es war einmal.|1.5",
            "achtgesichter/achtgesichter_0001.wav|Zweiter Satz.||2.25",
            "achtgesichter/achtgesichter_0002.wav|Dauer fehlt.|Dauer fehlt.|lang",
            "achtgesichter/achtgesichter_0003.wav|Zu wenig|Spalten",
        ],
    )
    write_tone(root / "achtgesichter" / "achtgesichter_0000.wav")
    write_tone(root / "achtgesichter" / "achtgesichter_0001.wav")
    write_tone(root / "achtgesichter" / "achtgesichter_0002.wav")
    write_lines(root / "achtgesichter" / "achtgesichter_0001.lab", ["0 1000 a"])

    items = read_corpus(root, language="de")
    assert [(i.utterance_id, i.text, i.speaker) for i in items] == [
        ("achtgesichter_0000", "Es war einmal.", "css10-de"),
        ("achtgesichter_0001", "Zweiter Satz.", "css10-de"),
    ]
    assert items[1].alignment_path == (root / "achtgesichter" / "achtgesichter_0001.lab").absolute()
    assert [(entry.line_number, entry.path.name) for entry in items.skipped] == [
        (3, "transcript.txt"),
        (4, "transcript.txt"),
    ]
    with pytest.raises(ValueError, match="pass its language"):
        read_corpus(root)
    assert read_css10(root, "de", speaker="hokuspokus")[0].speaker == "hokuspokus"


def test_unknown_layout_names_the_expected_layouts(tmp_path):
    with pytest.raises(ValueError, match="M-AILABS.*CSS10"):
        read_corpus(tmp_path)


def test_teacher_corpus_built_by_the_package_reads_back_with_its_alignments(tmp_path):
    from mlms_keras.data.teacher import build_teacher_corpus
    from mlms_keras.frontend.labels import read_hts_labels

    build_teacher_corpus(tmp_path / "teacher", preset="tiny", seed=0, speakers=["pl-female"], progress=False)
    lines = (tmp_path / "teacher" / "metadata.csv").read_text(encoding="utf-8").splitlines()
    items = read_corpus(tmp_path / "teacher")
    assert items.skipped == []
    assert [(i.utterance_id, i.text, i.language, i.speaker) for i in items] == [tuple(row.split("|")) for row in lines]
    for item in items:
        assert item.alignment_path == (tmp_path / "teacher" / "labels" / f"{item.utterance_id}.lab").absolute()
        info = soundfile.info(str(item.wav_path))
        assert read_hts_labels(item.alignment_path)[-1].end_s == pytest.approx(info.frames / info.samplerate, abs=1e-4)
