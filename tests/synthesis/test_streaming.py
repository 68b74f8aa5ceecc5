"""Streamed WORLD pieces joined without clicks (`mlms_keras.synthesis.streaming`), on features where joins can click.

The random test voice (`voice_testing`) buzzes at a steady F0 with noisy upper bands, so a join in its audio hides
in the noise: its chunks joined with the crossfade switched off pass a click check too. These features are a clean
pulse train instead (real speech's mean mel-cepstrum, little aperiodicity, a gliding F0), where butting two pieces
whose pulses are out of phase is a click the check sees.
"""

import numpy as np
import pytest
from voice_testing import speech_statistics

from mlms_keras import vocoder
from mlms_keras.synthesis import streaming
from mlms_keras.synthesis.streaming import STREAM_CROSSFADE_FRAMES, join_streamed_pieces

RATE = vocoder.DEFAULT_SAMPLE_RATE
SAMPLES_PER_FRAME = RATE * vocoder.FRAME_PERIOD_MS / 1000.0
FRAMES = 200  # 1 s


def voiced_features(f0_from, f0_to, bap_db):
    """(FRAMES, 49) float32: speech's mean mel-cepstrum, voiced, an F0 glide (Hz), `bap_db` (dB) in every band."""
    features = np.tile(speech_statistics()[0], (FRAMES, 1))
    features[:, vocoder.LF0] = np.log(np.geomspace(f0_from, f0_to, FRAMES))
    features[:, vocoder.VUV] = 1.0
    features[:, vocoder.BAP] = bap_db
    return features.astype(np.float32)


def vocode(vectors):
    return vocoder.synthesize(vectors, RATE, postfilter_beta=1.0)


def chunks_of(features, chunk_frames):
    """`(features, last)` pairs, as `Synthesizer.stream_acoustic_features` yields them."""
    starts = range(0, len(features), chunk_frames)
    return [(features[start : start + chunk_frames], start + chunk_frames >= len(features)) for start in starts]


def largest_step_near_joins(pieces):
    """The largest sample step within `STREAM_CROSSFADE_FRAMES` of a join between consecutive pieces."""
    steps = np.abs(np.diff(np.concatenate(pieces).astype(np.float64)))
    window = int(STREAM_CROSSFADE_FRAMES * SAMPLES_PER_FRAME)
    return max(steps[max(0, join - window) : join + window].max() for join in np.cumsum([len(p) for p in pieces])[:-1])


@pytest.mark.parametrize(("f0_from", "f0_to", "bap_db"), [(100.0, 200.0, -40.0), (120.0, 260.0, -60.0)])
@pytest.mark.parametrize("chunk_frames", [12, 32])
def test_joined_pieces_have_no_clicks_where_pieces_without_the_crossfade_have(
    f0_from, f0_to, bap_db, chunk_frames, monkeypatch
):
    features = voiced_features(f0_from, f0_to, bap_db)
    one_pass = vocode(features)
    largest_step = np.abs(np.diff(one_pass)).max()
    pieces = list(join_streamed_pieces(chunks_of(features, chunk_frames), vocode, RATE))
    assert len(np.concatenate(pieces)) == len(one_pass)
    # No step near a join exceeds the largest step of the one-pass audio (measured: at most 1.0001 times it over
    # F0 glides of 80-300 Hz, band aperiodicities of -60 to -30 dB and chunks of 12, 32 and 48 frames).
    assert largest_step_near_joins(pieces) <= 1.1 * largest_step
    # The control: the same pieces butted without the crossfade (nor the lag it aligns) click, 3 to 6 times the
    # largest one-pass step here, so the check above can fail.
    monkeypatch.setattr(streaming, "STREAM_CROSSFADE_FRAMES", 0)
    butted = list(join_streamed_pieces(chunks_of(features, chunk_frames), vocode, RATE))
    assert len(np.concatenate(butted)) == len(one_pass)
    assert largest_step_near_joins(butted) > 1.5 * largest_step
