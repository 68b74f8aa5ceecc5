"""Streaming synthesis: WORLD pieces of consecutive acoustic-model chunks joined without clicks.

WORLD synthesis is not chunk-local: a pulse's response spans about +-fft_size/2 samples and pulse positions follow
the F0 phase accumulated from the start. Each chunk is therefore synthesised with `STREAM_CONTEXT_FRAMES` of left
context, the last `STREAM_LOOKAHEAD_FRAMES` frames are held back until the next chunk (their audio still
misses pulses beyond the chunk), and consecutive pieces are joined with a `STREAM_CROSSFADE_FRAMES` raised-cosine
crossfade, so the joins have no clicks. Before the crossfade the new piece is shifted by at most one pitch period
(60 Hz) to the lag whose waveform best matches the previous piece's tail (normalised cross-correlation, as in
WSOLA), so the two pulse trains add in step instead of doubling the pulses for 20 ms; the shift does not
accumulate, since every piece is placed within one period of its own frames. Every boundary sits on a multiple of 4
frames, a whole number of samples at every supported rate (5 ms x 22 050 Hz = 110.25 samples). The streamed audio
has exactly the batch audio's length; it differs from it only near the joins (pulse phase), which
`tests/synthesis/test_synthesis.py` bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from mlms_keras import vocoder

__all__ = [
    "FRAME_GRID",
    "STREAM_CONTEXT_FRAMES",
    "STREAM_CROSSFADE_FRAMES",
    "STREAM_LOOKAHEAD_FRAMES",
    "STREAM_MIN_F0_HZ",
    "join_streamed_pieces",
]

STREAM_CONTEXT_FRAMES = 12
STREAM_LOOKAHEAD_FRAMES = 8
STREAM_CROSSFADE_FRAMES = 4
STREAM_MIN_F0_HZ = 60.0  # the join search covers one pitch period at this F0
FRAME_GRID = 4  # frame boundaries on multiples of 4 frames are whole samples at every supported rate


def _best_lag(tail: np.ndarray, wave: np.ndarray, begin: int, max_lag: int) -> int:
    """The shift in [-max_lag, max_lag] samples of `wave[begin:]` whose start best matches `tail` (normalised
    cross-correlation), kept so that `wave[begin + lag:]` exists."""
    length = len(tail)
    low, high = max(-max_lag, -begin), min(max_lag, len(wave) - begin - length)
    if length == 0 or high < low:
        return 0
    segment = wave[begin + low : begin + high + length].astype(np.float64)
    scores = np.correlate(segment, tail.astype(np.float64), mode="valid")
    energy = np.convolve(segment**2, np.ones(length), mode="valid")
    return low + int(np.argmax(scores / np.sqrt(energy + 1e-12)))


def join_streamed_pieces(
    chunks: Iterable[tuple[np.ndarray, bool]], vocode: Callable[[np.ndarray], np.ndarray], sample_rate: int
) -> Iterator[np.ndarray]:
    """Yields the audio of one sentence piece by piece ((samples,) float32) from its acoustic-model chunks.

    Args:
        chunks: `(features, last)` pairs: de-normalised `(frames, 49)` vocoder features of consecutive chunks,
            and whether the chunk is the sentence's last (`Synthesizer.stream_acoustic_features`).
        vocode: `(frames, 49)` features -> `(samples,)` wave at `sample_rate` (WORLD synthesis).
        sample_rate: Hz.
    """
    samples_per_frame = vocoder.FRAME_PERIOD_MS / 1000.0 * sample_rate
    crossfade = int(round(STREAM_CROSSFADE_FRAMES * samples_per_frame))
    fade_in = 0.5 - 0.5 * np.cos(np.pi * (np.arange(crossfade) + 0.5) / crossfade)
    max_lag = int(sample_rate / STREAM_MIN_F0_HZ)
    vectors = np.zeros((0, vocoder.FEATURE_DIM), np.float32)
    emitted_frames = 0  # audio is final up to this frame (a multiple of 4)
    tail = None  # the previous piece's audio just past `emitted_frames`, to crossfade with
    for chunk, last in chunks:
        vectors = np.concatenate([vectors, chunk])
        available = vectors.shape[0]
        end_frames = available if last else (available - STREAM_LOOKAHEAD_FRAMES) // FRAME_GRID * FRAME_GRID
        if end_frames <= emitted_frames:
            continue
        first_frame = max(0, (emitted_frames - STREAM_CONTEXT_FRAMES) // FRAME_GRID * FRAME_GRID)
        wave = vocode(vectors[first_frame:available])
        offset = int(round(first_frame * samples_per_frame))
        begin = int(round(emitted_frames * samples_per_frame)) - offset
        end = len(wave) if last else int(round(end_frames * samples_per_frame)) - offset
        # The new piece's pulses have another phase than the previous piece's: shift it by the lag (within
        # one pitch period) that best lines it up with the previous tail, so the crossfade adds pulses in step.
        lag = _best_lag(tail, wave, begin, max_lag) if tail is not None else 0
        piece = np.zeros(end - begin)
        available_piece = wave[begin + lag : end + lag]
        piece[: len(available_piece)] = available_piece
        if tail is not None:
            overlap = min(len(tail), len(piece))
            piece[:overlap] = tail[:overlap] * (1.0 - fade_in[:overlap]) + piece[:overlap] * fade_in[:overlap]
        tail = wave[end + lag : end + lag + crossfade]
        emitted_frames = end_frames
        yield piece.astype(np.float32)
