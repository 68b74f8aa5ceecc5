"""Merlin-style objective metrics: each checked against a value computed by hand, plus the Keras dev-set callback
(`mlms_keras.training.callbacks.AcousticMetricsCallback`)."""

import math
import subprocess
import sys

import numpy as np
import pytest

from mlms_keras import vocoder
from mlms_keras.evaluation import metrics

# 10 / ln(10) * sqrt(2), by hand: 4.3429448 * 1.4142136 = 6.1418514
MCD_SCALE_BY_HAND = 6.1418514


def test_mcd_matches_hand_computed_value_and_ignores_c0():
    reference = np.zeros((2, 40))
    generated = np.zeros((2, 40))
    generated[0, 1], generated[0, 2] = 3.0, 4.0  # distance 5
    generated[1, 0] = 100.0  # c0 (energy) is excluded
    generated[1, 5] = 1.0  # distance 1
    # mean distance 3 -> 3 * 6.1418514
    assert metrics.mel_cepstral_distortion_db(reference, generated) == pytest.approx(3 * MCD_SCALE_BY_HAND, rel=1e-6)


def test_mcd_frame_mask_removes_silence_frames():
    reference = np.zeros((3, 40))
    generated = np.zeros((3, 40))
    generated[0, 1] = 2.0
    generated[2, 3] = 50.0  # a silence frame with a huge error
    mask = np.array([1, 1, 0])
    # frames 0 and 1 remain: distances 2 and 0, mean 1
    assert metrics.mel_cepstral_distortion_db(reference, generated, mask) == pytest.approx(MCD_SCALE_BY_HAND, rel=1e-6)


def test_f0_rmse_uses_only_frames_voiced_in_both():
    ref_f0 = np.array([100.0, 200.0, 150.0, 130.0])
    gen_f0 = np.array([110.0, 190.0, 999.0, 120.0])
    ref_vuv = np.array([1, 1, 1, 0])
    gen_vuv = np.array([1, 1, 0, 1])
    rmse = metrics.f0_rmse_hz(np.log(ref_f0), np.log(gen_f0), ref_vuv, gen_vuv)
    assert rmse == pytest.approx(10.0, rel=1e-9)  # errors +10 and -10


def test_f0_correlation_matches_hand_computed_value():
    ref_f0 = np.array([100.0, 200.0, 300.0, 250.0])
    gen_f0 = np.array([110.0, 190.0, 330.0, 50.0])
    vuv = np.array([1, 1, 1, 0])
    # deviations (-100, 0, 100) and (-100, -20, 120): 22000 / sqrt(20000 * 24800) = 0.987829
    correlation = metrics.f0_correlation(np.log(ref_f0), np.log(gen_f0), vuv, np.ones(4))
    assert correlation == pytest.approx(0.987829, abs=1e-6)


def test_vuv_error_counts_disagreements_over_scored_frames():
    ref_vuv = np.array([1, 1, 0, 0, 1])
    gen_vuv = np.array([1, 0, 0, 1, 0])
    assert metrics.vuv_error_percent(ref_vuv, gen_vuv) == pytest.approx(60.0)
    mask = np.array([1, 1, 1, 1, 0])  # last frame silence
    assert metrics.vuv_error_percent(ref_vuv, gen_vuv, mask) == pytest.approx(50.0)


def test_bap_distortion_is_merlins_euclidean_mean_over_ten():
    reference = np.zeros((2, 7))
    generated = np.full((2, 7), -10.0)
    # sqrt(7 * 100) = 26.457513 per frame, / 10
    assert metrics.bap_distortion_db(reference, generated) == pytest.approx(2.6457513, rel=1e-7)


def test_duration_rmse_with_and_without_silence_phones():
    reference = np.array([10, 5, 20])
    generated = np.array([12, 5, 17])
    assert metrics.duration_rmse_frames(reference, generated) == pytest.approx(math.sqrt(13 / 3))
    assert metrics.duration_rmse_frames(reference, generated, labels=["sil", "a", "b"]) == pytest.approx(
        math.sqrt(9 / 2)
    )


def test_frame_mask_from_segments_marks_silence_and_uncovered_frames_false():
    segments = [(0, 3, "sil"), (3, 7, "a"), (7, 9, "pau"), (9, 10, "b")]
    mask = metrics.frame_mask_from_segments(segments, num_frames=12)
    expected = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0], dtype=bool)
    np.testing.assert_array_equal(mask, expected)


def test_evaluate_acoustic_splits_the_49_dim_layout():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(20, 49))
    reference[:, vocoder.VUV] = 1.0
    reference[:, vocoder.LF0] = np.log(150.0)
    generated = reference.copy()
    generated[:, 1] += 1.0  # c1 off by 1 everywhere -> MCD = scale * 1
    generated[:, vocoder.LF0] = np.log(160.0)  # 10 Hz everywhere
    generated[:5, vocoder.VUV] = 0.0  # 5 of 20 frames unvoiced
    generated[:, vocoder.BAP] += 10.0  # sqrt(7) * 10 / 10 per frame
    result = metrics.evaluate_acoustic(reference, generated)
    assert result["mcd_db"] == pytest.approx(MCD_SCALE_BY_HAND, rel=1e-6)
    assert result["f0_rmse_hz"] == pytest.approx(10.0, rel=1e-9)
    assert result["vuv_error_percent"] == pytest.approx(25.0)
    assert result["bap_distortion_db"] == pytest.approx(math.sqrt(7), rel=1e-9)


def test_metrics_name_the_argument_on_shape_mismatch():
    with pytest.raises(ValueError, match="ref_mcep.*gen_mcep"):
        metrics.mel_cepstral_distortion_db(np.zeros((3, 40)), np.zeros((4, 40)))
    with pytest.raises(ValueError, match="frame_mask"):
        metrics.vuv_error_percent(np.zeros(3), np.zeros(3), frame_mask=np.ones(2))
    with pytest.raises(ValueError, match="no frames"):
        metrics.vuv_error_percent(np.zeros(3), np.zeros(3), frame_mask=np.zeros(3))


def test_the_metrics_module_is_pure_numpy():
    # Importing it must not load TensorFlow or Keras (the frontend, the vocoder and `mlms --help` rely on it).
    code = "import sys, mlms_keras.evaluation.metrics; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def _tiny_acoustic_setup():
    """A TimeDistributed Dense acoustic model and a 3-utterance dev set of (inputs, targets, mask)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    frames, input_dim = 6, 5
    inputs = keras.Input(shape=(None, input_dim), name="linguistic")
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(vocoder.FEATURE_DIM))(inputs)
    model = keras.Model({"linguistic": inputs}, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")

    linguistic = rng.normal(size=(3, frames, input_dim)).astype("float32")
    targets = rng.normal(size=(3, frames, vocoder.FEATURE_DIM)).astype("float32")
    mask = np.ones((3, frames), dtype="float32")
    mask[0, :2] = 0.0  # leading silence
    mask[2, 4:] = 0.0  # padding
    dataset = tf.data.Dataset.from_tensor_slices(({"linguistic": linguistic}, targets, mask)).batch(2)

    output_mean = rng.normal(size=vocoder.FEATURE_DIM)
    output_mean[vocoder.LF0] = np.log(120.0)
    output_mean[vocoder.VUV] = 0.5
    output_std = np.abs(rng.normal(size=vocoder.FEATURE_DIM)) + 0.5
    output_std[vocoder.LF0] = 0.2
    return model, dataset, (linguistic, targets, mask), output_mean, output_std


def test_acoustic_metrics_callback_logs_denormalised_dev_metrics_each_epoch(tmp_path):
    import keras

    from mlms_keras.training.callbacks import AcousticMetricsCallback

    model, dataset, (linguistic, targets, mask), output_mean, output_std = _tiny_acoustic_setup()
    callback = AcousticMetricsCallback(dataset, output_mean, output_std)
    seen = []

    class CheckAgainstNumpy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # Independent recomputation with the numpy metric functions on the current weights.
            predicted = self.model.predict({"linguistic": linguistic}, verbose=0)
            keep = mask.astype(bool)
            reference = targets[keep] * output_std + output_mean
            generated = predicted[keep] * output_std + output_mean
            expected = metrics.evaluate_acoustic(reference, generated)
            seen.append(
                (
                    (logs["val_mcd_db"], expected["mcd_db"]),
                    (logs["val_f0_rmse_hz"], expected["f0_rmse_hz"]),
                    (logs["val_vuv_error_percent"], expected["vuv_error_percent"]),
                )
            )

    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_mcd_db", mode="min", save_best_only=True
    )
    history = model.fit(
        dataset, epochs=2, verbose=0, shuffle=False, callbacks=[callback, CheckAgainstNumpy(), checkpoint]
    )

    assert len(seen) == 2
    for pairs in seen:
        for logged, expected in pairs:
            assert logged == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert len(history.history["val_mcd_db"]) == 2
    assert (tmp_path / "best.keras").exists()  # ModelCheckpoint could monitor the key
    # Training moved the weights, so the two epochs' MCDs differ: the callback really re-ran the model.
    assert history.history["val_mcd_db"][0] != history.history["val_mcd_db"][1]


def test_acoustic_metrics_callback_max_batches_scores_only_the_first_batches():
    from mlms_keras.training.callbacks import AcousticMetricsCallback

    model, dataset, (linguistic, targets, mask), output_mean, output_std = _tiny_acoustic_setup()
    callback = AcousticMetricsCallback(dataset, output_mean, output_std, max_batches=1)
    callback.set_model(model)
    predicted = model.predict({"linguistic": linguistic[:2]}, verbose=0)
    keep = mask[:2].astype(bool)
    expected = metrics.mel_cepstral_distortion_db(
        (targets[:2][keep] * output_std + output_mean)[:, vocoder.MCEP],
        (predicted[keep] * output_std + output_mean)[:, vocoder.MCEP],
    )
    assert callback.compute()["val_mcd_db"] == pytest.approx(expected, rel=1e-4)


def test_acoustic_metrics_callback_rejects_wrong_statistics_shape():
    from mlms_keras.training.callbacks import AcousticMetricsCallback

    with pytest.raises(ValueError, match="output_std"):
        AcousticMetricsCallback([], np.zeros(49), np.ones(48))
