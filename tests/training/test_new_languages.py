"""New languages end to end on the shipped voice: Russian (Cyrillic) and Czech (Latin), neither of the paper's eight.

For each language: a teacher corpus of 100 utterances of one new speaker, prepared with the shipped voice's layout;
the shipped voice adapted with v1-v4 (`VARIANTS`), a single-language model trained from scratch on the same data, and
held-out sentences (texts no corpus utterance has) synthesised with every result. The training is one step per
phase: these tests check the mechanics (tables, shapes, which outputs stay bit-identical, `mlms say` speaking the
new language); the quality comparison is `benchmarks/bench_languages.py`, reported in docs/languages.md.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from test_adapt_voice import SAME_OUTPUTS_SCRIPT

from mlms_keras.cli import main
from mlms_keras.data.teacher import build_teacher_corpus
from mlms_keras.models.growth import feature_positions
from mlms_keras.synthesis import Synthesizer
from mlms_keras.training.adaptation import AdaptationOptions, adapt_voice
from mlms_keras.zoo import load_voice

pytestmark = pytest.mark.slow

SHIPPED = "teacher-small"
#: language -> (espeak voice variant of the new speaker, a held-out sentence).
LANGUAGES = {
    "ru": ("m3", "Завтра утром мы поедем к бабушке в деревню."),
    "cs": ("f2", "Zítra ráno pojedeme k babičce na venkov."),
}
#: The variants each language adapts with. Each adaptation costs about a minute of CI time on 2 cores (mostly
#: tracing the models once per phase), so the second language runs v1 only: the variants' code paths do not depend
#: on the language, while the corpus, the frontend, the layout growth and `mlms say` run for both scripts.
VARIANTS = {"ru": ("v1", "v2", "v3", "v4"), "cs": ("v1",)}
#: Old (language, text) pairs whose output v1 must keep bit-identical, and v2-v4 change.
OLD_TEXTS = {"en-us": "We were away a year ago.", "pl": "Dzień dobry, jak się masz?"}
UTTERANCES = 100


def speaker_of(language):
    return f"{language}-{LANGUAGES[language][0]}"


@pytest.fixture(scope="module", params=sorted(LANGUAGES))
def new_language(request, tmp_path_factory):
    """`(language, prepared dataset folder, work folder)`: 100 teacher utterances prepared with the shipped layout."""
    language = request.param
    root = tmp_path_factory.mktemp(f"new-{language}")
    report = build_teacher_corpus(
        root / "corpus",
        languages=[language],
        utterances=UTTERANCES,
        voice_variant=LANGUAGES[language][0],
        workers=2,
        progress=False,
    )
    assert report.built == UTTERANCES and not report.skipped
    with open(root / "corpus" / "metadata.csv", encoding="utf-8") as rows:
        texts = {row[1] for row in csv.reader(rows, delimiter="|")}
    assert LANGUAGES[language][1] not in texts  # the held-out sentence is really held out
    prepare = ["prepare", str(root / "corpus"), str(root / "prepared"), "--layout-from", SHIPPED, "--quiet"]
    assert main([*prepare, "--f0-method", "dio", "--workers", "2", "--utterances-per-shard", "50"]) == 0
    return language, root / "prepared", root


def check_speaks(voice, language, speaker):
    """Synthesises the held-out sentence: a finite, non-silent wave of a plausible length."""
    wave = Synthesizer(voice).synthesize(LANGUAGES[language][1], language, speaker)
    assert wave.ndim == 1 and np.isfinite(wave).all() and np.abs(wave).max() > 1e-3
    assert 0.5 < len(wave) / voice.sample_rate < 15.0
    return wave


def test_the_shipped_voice_adapts_with_every_variant_to_a_new_language(new_language, tmp_path, capsys):
    language, dataset, _ = new_language
    speaker = speaker_of(language)
    base = load_voice(SHIPPED)
    voices = {}
    for variant in VARIANTS[language]:
        options = AdaptationOptions(variant=variant, epochs_per_phase=1, steps_per_epoch=1, batch_size=4)
        result = adapt_voice(SHIPPED, dataset, language, speaker, tmp_path / variant, options, verbose=0)
        voice = voices[variant] = load_voice(result.folder)  # checks every file's sha256

        # The voice's tables and both models grew by exactly the new language and speaker.
        assert voice.languages == {**base.languages, language: len(base.languages)}
        assert voice.speakers[speaker]["id"] == len(base.speakers)
        assert voice.speakers[speaker]["language"] == language
        assert {name: entry["id"] for name, entry in voice.speakers.items() if name != speaker} == {
            name: entry["id"] for name, entry in base.speakers.items()
        }
        assert voice.layout == base.layout.add_language(language)
        assert voice.acoustic_model.input["linguistic"].shape[-1] == voice.layout.frame_dimension
        assert voice.duration_model.input["linguistic"].shape[-1] == voice.layout.dimension
        assert voice.acoustic_model.output.shape[-1] == base.acoustic_model.output.shape[-1] == 49
        metrics = voice.metadata["metrics"]["per_language"][language]
        assert all(np.isfinite(metrics[key]) for key in ("mcd_db", "f0_rmse_hz", "vuv_error_percent"))
        assert np.isfinite(metrics["duration_rmse_frames"]) and metrics["split"] == "dev"
        record = voice.metadata["adaptation"][-1]
        assert record["variant"] == variant and record["old_languages_unchanged"] == (variant == "v1")
        check_speaks(voice, language, speaker)

        # v1 trains only the code and the new speaker: the old outputs are bit-identical (checked below with the
        # kernels `mlms say` runs). v2-v4 move the shared mean tower, so every old language's output changes; the
        # acoustic models are compared on the same frames (the duration model changes too).
        if variant != "v1":
            positions = feature_positions(base.layout.frame_feature_names, voice.layout.frame_feature_names)
            for old_language, text in OLD_TEXTS.items():
                old_speaker = next(name for name, entry in base.speakers.items() if entry["language"] == old_language)
                frames, _ = Synthesizer(voice).frame_features(text, old_language, old_speaker)
                ids = {
                    "language": np.array([base.languages[old_language]], "int32"),
                    "speaker": np.array([base.speakers[old_speaker]["id"]], "int32"),
                }
                before = base.acoustic_model.predict_on_batch(dict(ids, linguistic=frames[None][:, :, positions]))
                after = voice.acoustic_model.predict_on_batch(dict(ids, linguistic=frames[None]))
                assert np.abs(np.asarray(after) - np.asarray(before)).max() > 1e-4, (variant, old_language)

    completed = subprocess.run(
        [sys.executable, "-c", SAME_OUTPUTS_SCRIPT, SHIPPED, str(voices["v1"].folder), json.dumps(OLD_TEXTS)],
        env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split()[-1] == str(len(OLD_TEXTS) * len(base.speakers))

    # `mlms say` speaks the new language with the new speaker, and any old speaker can speak it too.
    for speaker_name in (speaker, "en-us-female"):
        wav = tmp_path / f"{speaker_name}.wav"
        command = ["say", "--voice", str(voices[VARIANTS[language][-1]].folder), "--lang", language]
        command += ["--speaker", speaker_name]
        assert main([*command, LANGUAGES[language][1], "-o", str(wav)]) == 0
        wave, rate = soundfile.read(wav)
        assert rate == base.sample_rate and len(wave) > rate // 2 and np.abs(wave).max() > 1e-3


def test_a_scratch_model_trains_on_the_same_new_language_data(new_language, tmp_path, capsys):
    language, dataset, _ = new_language
    speaker = speaker_of(language)
    acoustic, duration, voice_folder = tmp_path / "acoustic", tmp_path / "duration", tmp_path / "voice"
    train = ["train", str(dataset), "--model", "slss", "--languages", language, "--speakers", speaker, "--quiet"]
    assert main([*train, "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--out", str(acoustic)]) == 0
    train_duration = ["zoo", "train-duration", str(dataset), "--languages", language, "--epochs", "1"]
    assert main([*train_duration, "--batch-size", "4", "--out", str(duration)]) == 0
    pack = ["zoo", "pack", "--acoustic", str(acoustic), "--duration", str(duration), "--dataset", str(dataset)]
    assert main([*pack, "--name", f"{language}-scratch", "--out", str(voice_folder)]) == 0

    voice = load_voice(voice_folder)
    assert voice.languages == {language: 0}
    assert list(voice.speakers) == [speaker] and voice.speakers[speaker]["language"] == language
    assert voice.layout.fingerprint == load_voice(SHIPPED).layout.add_language(language).fingerprint
    metrics = voice.metadata["metrics"]["per_language"][language]
    # After one step the model may voice no frame yet: F0 RMSE is then undefined, MCD and V/UV error are not.
    assert np.isfinite(metrics["mcd_db"]) and np.isfinite(metrics["vuv_error_percent"])
    check_speaks(voice, language, speaker)
