"""Boundary accuracy of an alignment against exact labels (the benchmark's and the tests' measure).

The boundaries of an utterance are the start of every spoken phone and the end of every phone that silence or the
end of the utterance follows (so a pause contributes its two edges). Tone segments (zero length, no audio) are not
boundaries. A hypothesis and a reference with the same phones give one absolute error per boundary.
"""

from __future__ import annotations

import numpy as np

from mlms_keras.align.phones import AlignmentPhones
from mlms_keras.frontend.labels import Segment
from mlms_keras.frontend.linguistic import is_silence_label

__all__ = ["boundary_errors", "summarise_errors"]


def boundary_errors(reference: list[Segment], hypothesis: list[Segment], phones: AlignmentPhones) -> np.ndarray:
    """Absolute boundary errors in seconds, matched phone by phone.

    A phone's end is compared only where both sides end it with silence; otherwise only starts are compared (so
    a pause the hypothesis put elsewhere costs its misplaced phone edges, not a length mismatch).

    Raises:
        ValueError: the two segmentations have different phones.
    """

    def starts_and_ends(segments):
        tones = {tone for group in phones.tones_after for tone in group}
        spoken = [s for s in segments if is_silence_label(s.label) or not (s.label in tones and s.end_s == s.start_s)]
        starts, ends = [], []
        for index, segment in enumerate(spoken):
            if is_silence_label(segment.label):
                continue
            starts.append(segment.start_s)
            last = index + 1 == len(spoken) or is_silence_label(spoken[index + 1].label)
            ends.append(segment.end_s if last else None)
        return starts, ends

    ref_starts, ref_ends = starts_and_ends(reference)
    hyp_starts, hyp_ends = starts_and_ends(hypothesis)
    if len(ref_starts) != len(hyp_starts) or len(ref_starts) != len(phones):
        raise ValueError(
            f"the segmentations have {len(ref_starts)} and {len(hyp_starts)} phones, the text {len(phones)}"
        )
    errors = [abs(a - b) for a, b in zip(ref_starts, hyp_starts)]
    errors += [abs(a - b) for a, b in zip(ref_ends, hyp_ends) if a is not None and b is not None]
    return np.asarray(errors)


def summarise_errors(errors: np.ndarray) -> dict:
    """`{"boundaries", "within_20ms", "within_10ms", "mean_error_ms", "median_error_ms"}` of errors in seconds."""
    errors = np.asarray(errors, np.float64)
    return {
        "boundaries": int(errors.size),
        "within_20ms": float(np.mean(errors <= 0.020)),
        "within_10ms": float(np.mean(errors <= 0.010)),
        "mean_error_ms": float(1000 * errors.mean()),
        "median_error_ms": float(1000 * np.median(errors)),
    }
