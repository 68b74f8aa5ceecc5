"""Objective measures of acoustic-model output, with Merlin's definitions so the numbers compare with its tables.

All functions take plain numpy arrays of frames (an utterance, or many concatenated). `frame_mask` (frames,)
selects the frames to score: 1/True for speech, 0/False for silence (`frame_mask_from_segments` builds it from
phone alignments). Pooling over a corpus: concatenate the frames of all utterances and call once, which is what
Merlin does (a sum over all frames divided by the total count, not a mean of per-utterance means).

- MCD (dB) = 10 / ln 10 * sqrt(2) * mean over frames of || c1..c39 (ref) - c1..c39 (gen) ||_2  (c0 excluded).
- F0 RMSE (Hz) and F0 CORR on frames voiced in both reference and generated, on exp(lf0).
- V/UV error (%) = frames where exactly one side is voiced / frames scored.
- BAP distortion = mean over frames of the Euclidean distance between band aperiodicities (dB), divided by 10,
  exactly as Merlin's `run_merlin.py` reports "BAP" (its comment: BAP is 10*log10, so divide by 10).
- Duration RMSE (frames) per phone, optionally without silence phones.

Merlin anchor (CMU ARCTIC slt, 16 kHz, feed-forward 6x1024): MCD 4.91 dB, F0 RMSE 11.9 Hz, V/UV 5.3 %.
"""

from __future__ import annotations

import numpy as np

from mlms_keras import vocoder

__all__ = [
    "MCD_SCALE",
    "SILENCE_LABELS",
    "bap_distortion_db",
    "duration_rmse_frames",
    "evaluate_acoustic",
    "f0_correlation",
    "f0_rmse_hz",
    "frame_mask_from_segments",
    "mel_cepstral_distortion_db",
    "vuv_error_percent",
]

MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)
#: Phone labels treated as silence (compared lower-case).
SILENCE_LABELS = frozenset({"sil", "pau", "sp", "spn", "h#", "#", "<sil>", "silence", ""})


def _as_frames(array, name, dims=None):
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 and dims is None:
        return array
    if array.ndim != 2 or (dims is not None and array.shape[1] != dims):
        expected = f"(frames, {dims})" if dims else "(frames,) or (frames, dims)"
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}.")
    return array


def _paired(reference, generated, frame_mask, names, dims=None):
    reference = _as_frames(reference, names[0], dims)
    generated = _as_frames(generated, names[1], dims)
    if reference.shape != generated.shape:
        raise ValueError(f"{names[0]} {reference.shape} and {names[1]} {generated.shape} must have the same shape.")
    if frame_mask is not None:
        frame_mask = np.asarray(frame_mask).astype(bool)
        if frame_mask.shape != reference.shape[:1]:
            raise ValueError(f"frame_mask: expected shape ({reference.shape[0]},), got {frame_mask.shape}.")
        reference, generated = reference[frame_mask], generated[frame_mask]
    if reference.shape[0] == 0:
        raise ValueError(f"{names[0]}: no frames to score (empty input or all frames masked out).")
    return reference, generated


def frame_mask_from_segments(segments, num_frames: int, silence_labels=SILENCE_LABELS) -> np.ndarray:
    """Speech mask (num_frames,) bool from phone segments `[(start_frame, end_frame, label), ...]`.

    `end_frame` is exclusive. Frames of segments whose label (lower-cased) is in `silence_labels` are False, as
    are frames no segment covers (e.g. the final frame WORLD adds past the last alignment); the rest are True.
    """
    mask = np.zeros(int(num_frames), dtype=bool)
    for index, (start, end, label) in enumerate(segments):
        if not 0 <= start <= end:
            raise ValueError(f"segments[{index}]: need 0 <= start_frame <= end_frame, got ({start}, {end}, {label!r}).")
        if str(label).strip().lower() not in silence_labels:
            mask[int(start) : int(end)] = True
    return mask


def mel_cepstral_distortion_db(ref_mcep, gen_mcep, frame_mask=None) -> float:
    """Merlin's MCD in dB between (frames, order + 1) mel-cepstra, over c1..cN (c0, the energy, excluded)."""
    reference, generated = _paired(ref_mcep, gen_mcep, frame_mask, ("ref_mcep", "gen_mcep"))
    distances = np.sqrt(np.sum((reference[:, 1:] - generated[:, 1:]) ** 2, axis=1))
    return float(MCD_SCALE * distances.mean())


def _voiced_in_both(ref_lf0, gen_lf0, ref_vuv, gen_vuv, frame_mask):
    reference = np.stack([_as_frames(ref_lf0, "ref_lf0"), _as_frames(ref_vuv, "ref_vuv")], axis=1)
    generated = np.stack([_as_frames(gen_lf0, "gen_lf0"), _as_frames(gen_vuv, "gen_vuv")], axis=1)
    reference, generated = _paired(reference, generated, frame_mask, ("ref_lf0", "gen_lf0"))
    both = (reference[:, 1] > 0.5) & (generated[:, 1] > 0.5)
    return np.exp(reference[both, 0]), np.exp(generated[both, 0])


def f0_rmse_hz(ref_lf0, gen_lf0, ref_vuv, gen_vuv, frame_mask=None) -> float:
    """RMSE in Hz of exp(lf0) over frames voiced in both (vuv > 0.5). NaN if no frame is voiced in both."""
    reference_hz, generated_hz = _voiced_in_both(ref_lf0, gen_lf0, ref_vuv, gen_vuv, frame_mask)
    if reference_hz.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((reference_hz - generated_hz) ** 2)))


def f0_correlation(ref_lf0, gen_lf0, ref_vuv, gen_vuv, frame_mask=None) -> float:
    """Pearson correlation of F0 in Hz over frames voiced in both. NaN with fewer than 2 such frames or no variance."""
    reference_hz, generated_hz = _voiced_in_both(ref_lf0, gen_lf0, ref_vuv, gen_vuv, frame_mask)
    if reference_hz.size < 2 or reference_hz.std() == 0 or generated_hz.std() == 0:
        return float("nan")
    return float(np.corrcoef(reference_hz, generated_hz)[0, 1])


def vuv_error_percent(ref_vuv, gen_vuv, frame_mask=None) -> float:
    """Percentage of scored frames whose voicing decision (vuv > 0.5) differs."""
    reference, generated = _paired(ref_vuv, gen_vuv, frame_mask, ("ref_vuv", "gen_vuv"))
    return float(100.0 * np.mean((reference > 0.5) != (generated > 0.5)))


def bap_distortion_db(ref_bap, gen_bap, frame_mask=None) -> float:
    """Merlin's BAP distortion: mean over frames of the Euclidean distance of (frames, bands) dB values, / 10."""
    reference, generated = _paired(ref_bap, gen_bap, frame_mask, ("ref_bap", "gen_bap"))
    return float(np.sqrt(np.sum((reference - generated) ** 2, axis=1)).mean() / 10.0)


def duration_rmse_frames(ref_durations, gen_durations, labels=None, silence_labels=SILENCE_LABELS) -> float:
    """RMSE in frames between per-phone durations (phones,); with `labels` (phones,), silence phones are skipped."""
    mask = None
    if labels is not None:
        mask = np.array([str(label).strip().lower() not in silence_labels for label in labels])
    reference, generated = _paired(ref_durations, gen_durations, mask, ("ref_durations", "gen_durations"))
    return float(np.sqrt(np.mean((reference - generated) ** 2)))


def evaluate_acoustic(ref_vectors, gen_vectors, frame_mask=None) -> dict[str, float]:
    """All frame metrics between two (frames, 49) matrices in `vocoder` layout (de-normalised units).

    Returns a dict: `mcd_db`, `f0_rmse_hz`, `f0_corr`, `vuv_error_percent`, `bap_distortion_db`.
    """
    reference = _as_frames(ref_vectors, "ref_vectors", vocoder.FEATURE_DIM)
    generated = _as_frames(gen_vectors, "gen_vectors", vocoder.FEATURE_DIM)
    f0_arguments = (
        reference[:, vocoder.LF0],
        generated[:, vocoder.LF0],
        reference[:, vocoder.VUV],
        generated[:, vocoder.VUV],
        frame_mask,
    )
    return {
        "mcd_db": mel_cepstral_distortion_db(reference[:, vocoder.MCEP], generated[:, vocoder.MCEP], frame_mask),
        "f0_rmse_hz": f0_rmse_hz(*f0_arguments),
        "f0_corr": f0_correlation(*f0_arguments),
        "vuv_error_percent": vuv_error_percent(reference[:, vocoder.VUV], generated[:, vocoder.VUV], frame_mask),
        "bap_distortion_db": bap_distortion_db(reference[:, vocoder.BAP], generated[:, vocoder.BAP], frame_mask),
    }
