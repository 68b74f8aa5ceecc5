"""The aligner's parts against independent references: numpy inference vs Keras, Viterbi vs brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mlms_keras.align.features import frame_count, log_mel
from mlms_keras.align.model import AlignerConfig, AlignerModel, build_keras_model
from mlms_keras.align.phones import mnemonic_ipa, phones_for_text, target_matrix
from mlms_keras.align.viterbi import EmissionSettings, forced_align


def test_numpy_forward_pass_equals_keras(tmp_path):
    config = AlignerConfig(conv_filters=8, gru_units=6, dilations=(1, 3))
    network = build_keras_model(config)
    rng = np.random.default_rng(0)
    for layer in network.layers:  # non-trivial biases too (Keras starts them at zero)
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    features = rng.normal(size=(37, config.num_mels)).astype("float32")
    expected = network.predict(features[None], verbose=0)[0]
    model = AlignerModel.from_keras(network, config, {"emission": {"feature_weight": 3.0}})
    np.testing.assert_allclose(model.posteriors(features), expected, atol=2e-5)
    model.save(tmp_path / "m")
    loaded = AlignerModel.load(tmp_path / "m")
    assert loaded.metadata["emission"] == {"feature_weight": 3.0}
    np.testing.assert_allclose(loaded.posteriors(features), expected, atol=2e-5)
    np.testing.assert_allclose(loaded.to_keras().predict(features[None], verbose=0)[0], expected, atol=1e-6)


def test_changed_weights_are_refused(tmp_path):
    config = AlignerConfig(conv_filters=4, gru_units=3, dilations=(1,))
    AlignerModel.from_keras(build_keras_model(config), config).save(tmp_path / "m")
    with open(tmp_path / "m" / "weights.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        AlignerModel.load(tmp_path / "m")


def test_log_mel_frames_sit_on_the_5ms_grid():
    rate = 16000
    wave = np.zeros(rate, np.float32)
    wave[8000:8400] = np.sin(np.arange(400) * 0.3) * np.hanning(400)  # a smooth burst centred at 0.5125 s
    frames = log_mel(wave)
    assert frames.shape == (frame_count(rate), 40) == (201, 40)
    power = np.exp(frames).sum(axis=1)
    assert int(np.argmax(power)) in (102, 103)  # frame i is centred at i * 5 ms: 102.5 frames is the centre
    assert power[102] == pytest.approx(power[103], rel=0.05)


def _brute_force(scores, phones, settings):
    """Best total over every segmentation of [sil] p1 [pau]... pN [sil] (tiny cases only)."""
    frames = scores.shape[0]
    starts = phones.word_starts
    units = [("sil", None)]
    for index in range(len(phones)):
        if index and starts[index]:
            units.append(("pau", None))
        units.append(("phone", index))
    units.append(("sil", None))
    best = -np.inf
    for used in itertools.product(*[[True] if kind == "phone" else [False, True] for kind, _ in units]):
        chosen = [unit for unit, keep in zip(units, used) if keep]
        minimum = [
            settings.min_pause_frames if k == "pau" else settings.min_silence_frames if k == "sil" else 1
            for k, _ in chosen
        ]
        for cuts in itertools.combinations(range(1, frames), len(chosen) - 1):
            edges = (0, *cuts, frames)
            lengths = np.diff(edges)
            if np.any(lengths < minimum):
                continue
            total = 0.0
            for (kind, index), start, end in zip(chosen, edges[:-1], edges[1:]):
                column = -1 if index is None else index
                total += scores[start:end, column].sum() - (settings.pause_penalty if kind == "pau" else 0.0)
            best = max(best, total)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_matches_brute_force(seed):
    phones = phones_for_text("oh no", "en-us")  # three phones in two words: o, n, o (a pause fits between)
    rng = np.random.default_rng(seed)
    settings = EmissionSettings(pause_penalty=0.5, min_pause_frames=2, min_silence_frames=1)
    scores = rng.normal(size=(9, len(phones) + 1))
    path = forced_align(scores, phones, settings)
    assert path.total == pytest.approx(_brute_force(scores, phones, settings))
    covered = [end - start for _, _, start, end in path.units]
    assert sum(covered) == 9 and [u[0] for u in path.units].count("phone") == len(phones)


def test_viterbi_refuses_audio_too_short_for_its_phones():
    phones = phones_for_text("a long sentence with many phones", "en-us")
    with pytest.raises(ValueError, match="too short"):
        forced_align(np.zeros((5, len(phones) + 1)), phones, EmissionSettings())


def test_phones_carry_tones_and_articulatory_targets():
    phones = phones_for_text("你好", "cmn")
    assert any(phones.tones_after)  # Mandarin tones ride on their vowels, not as phones of their own
    targets, mask, known = target_matrix(["m"])
    assert known.tolist() == [True]
    names = __import__("mlms_keras.frontend.layout", fromlist=["x"]).articulatory_feature_names()
    assert targets[0, names.index("nas")] == 1.0 and mask[0, names.index("nas")] == 1.0
    assert targets[0, names.index("syl")] == 0.0


def test_phones_without_frontend_ipa_are_read_from_their_mnemonics():
    # Polish "balkonie": espeak-ng's mnemonics (b a l k O n^ ; E#) and IPA tokens differ in number, so the
    # frontend gives no IPA; the mnemonics give the features.
    phones = phones_for_text("balkonie", "pl")
    assert not any(phones.ipa) and phones.known.all()
    assert mnemonic_ipa("n^") == "ɲ" and mnemonic_ipa("t;") == "tʲ" and mnemonic_ipa("A:") == "ɑː"
    assert mnemonic_ipa(";") == "j" and mnemonic_ipa("E#") == "ɛ"
    targets, mask, known = target_matrix(["", "☃"], ["%%", "%%"])
    assert not known.any() and np.all(targets == 0.5) and np.all(mask == 1.0)  # generic speech, never free
