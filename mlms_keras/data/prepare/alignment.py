"""Fitting an alignment to WORLD's frames (the linguistic side is fitted to the acoustic side, frame-exactly), and
aligning the utterances that come without one (`align_missing`, `mlms prepare --align auto`).

**Frame alignment rule** (`fit_durations_to_frames`). WORLD gives `num_frames_for(samples, rate)` =
`floor(duration / 5 ms) + 1` frames; the alignment gives phoneme durations from `segments_to_frames`
(boundaries rounded to the nearest 5 ms frame), covering frames `[start_frame, start_frame + sum(durations))`.
The acoustic side is never changed; the linguistic side is fitted to it:

1. frames before the first segment join the first phoneme (`durations[0] += start_frame`);
2. a shortfall is added to the last phoneme;
3. an excess is taken from the last phonemes (backwards; a phoneme may drop to 0 frames).

The frame features (coarse-coded position, duration) are computed after the fit, so they describe the frames
actually present. The number of frames moved, `start_frame + |difference|`, must be at most `max_frame_mismatch`
(default 5 frames = 25 ms); beyond that the label file does not describe this wav and the utterance is skipped
with `FrameCountMismatchError`. For the teacher corpus the labels end at the wav's last sample, so the last
phoneme (silence) gains 0 or 1 frame.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ALIGNMENT_FOLDER",
    "ALIGN_MODES",
    "DEFAULT_MAX_FRAME_MISMATCH",
    "FrameCountMismatchError",
    "align_missing",
    "fit_durations_to_frames",
]

#: Most frames the rule may move by default (5 frames = 25 ms).
DEFAULT_MAX_FRAME_MISMATCH = 5


class FrameCountMismatchError(ValueError):
    """The alignment and the wav's WORLD analysis differ by more frames than allowed."""


def fit_durations_to_frames(
    durations_frames,
    start_frame: int,
    num_frames: int,
    max_frame_mismatch: int = DEFAULT_MAX_FRAME_MISMATCH,
    name: str = "utterance",
) -> np.ndarray:
    """Fit phoneme durations (frames) to `num_frames` acoustic frames by the rule in the module docstring.

    Args:
        durations_frames: `(phonemes,)` non-negative ints, the alignment's frames per phoneme.
        start_frame: frame where the alignment's first segment starts (>= 0).
        num_frames: WORLD's frame count for the wav (`vocoder.num_frames_for`).
        max_frame_mismatch: most frames the rule may move.
        name: named in errors.

    Returns:
        `(phonemes,)` int64 durations summing to `num_frames`.

    Raises:
        FrameCountMismatchError: more than `max_frame_mismatch` frames would move.
    """
    durations = np.asarray(durations_frames, np.int64).copy()
    if durations.ndim != 1 or durations.size == 0:
        raise ValueError(f"{name}: durations_frames must be a non-empty (phonemes,) array, got {durations.shape}.")
    aligned_frames = int(start_frame) + int(durations.sum())
    difference = int(num_frames) - aligned_frames
    moved = int(start_frame) + abs(difference)
    if moved > max_frame_mismatch:
        raise FrameCountMismatchError(
            f"{name}: the alignment covers {aligned_frames} frames (starting at frame {start_frame}) but WORLD "
            f"analysis of the wav gives {num_frames}; fitting would move {moved} frames, more than "
            f"max_frame_mismatch={max_frame_mismatch}. The label file does not describe this wav (wrong file, "
            "trimmed audio or another sample rate): re-align it, or raise --max-frame-mismatch."
        )
    durations[0] += int(start_frame)
    if difference > 0:
        durations[-1] += difference
    index = durations.size - 1
    while difference < 0:
        taken = min(int(durations[index]), -difference)
        durations[index] -= taken
        difference += taken
        index -= 1
    return durations


# Utterances without labels (`mlms prepare --align auto`) -----------------------------------------------------------
#: `mlms prepare --align` choices: `auto` aligns utterances that have no labels, `never` skips them.
ALIGN_MODES = ("auto", "never")
#: Folder of the dataset where `--align auto` writes the labels it makes (with `alignment_report.json`).
ALIGNMENT_FOLDER = "alignments"


def align_missing(items: list, out_dir, workers: int, progress: bool) -> list:
    """Align corpus items that have no alignment with the built-in aligner (`mlms_keras.align.align_items`).

    The labels go to `<out_dir>/alignments/` (resumable: labels there are reused), and each aligned item's
    `alignment_path` is set to its label file. Items that cannot be aligned keep `alignment_path = None`.

    Args:
        items: `mlms_keras.data.readers.CorpusItem`s without alignment.
        out_dir: the prepared dataset's folder.
        workers: processes.
        progress: show progress bars.

    Returns:
        The skipped entries (`{"id", "file", "stage": "align", "reason"}`) of items that could not be aligned.
    """
    from pathlib import Path

    from mlms_keras.align.corpus import AlignOptions, align_items

    report = align_items(items, Path(out_dir) / ALIGNMENT_FOLDER, AlignOptions(workers=workers, progress=progress))
    for item in items:
        label = report.labels.get(item.utterance_id)
        if label is not None:
            item.alignment_path = Path(label)
    return report.skipped
