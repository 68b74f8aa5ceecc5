"""Time-aligned label files: HTS/Merlin label files and Praat TextGrids.

Corpora aligned by other tools (HTS and Merlin label files, the Montreal Forced Aligner's TextGrids) are read into
one form, a list of `Segment` in seconds, and can be written back in either format. `segments_to_frames` turns
segments into 5 ms acoustic frame ranges with a rounding rule that keeps contiguous segments contiguous.

HTS label files hold one segment per line, `start end label`, with `start` and `end` as integers in units of
100 ns (10,000,000 per second). The label may be a plain phoneme (mono labels) or a full-context label such as
`a^b-c+d=e@1_2/A:...`; it is kept verbatim. State-level Merlin labels (`...[2]`) are read the same way.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from pathlib import Path

from praatio import textgrid as praatio_textgrid
from praatio.data_classes.interval_tier import IntervalTier

from mlms_keras.utils.fileio import atomic_output, atomic_write_text

__all__ = [
    "HTS_LABEL_SUFFIXES",
    "HTS_UNITS_PER_SECOND",
    "TEXTGRID_SUFFIXES",
    "Segment",
    "find_alignment",
    "read_alignment",
    "read_hts_labels",
    "read_textgrid",
    "seconds_to_hts_units",
    "segments_to_frames",
    "write_hts_labels",
    "write_textgrid",
]

HTS_UNITS_PER_SECOND = 10_000_000  # HTS time unit is 100 ns.

TEXTGRID_SUFFIXES = (".TextGrid", ".textgrid")
HTS_LABEL_SUFFIXES = (".lab",)


@dataclasses.dataclass(frozen=True)
class Segment:
    """One labelled time interval.

    Attributes:
        start_s: start time in seconds (>= 0).
        end_s: end time in seconds (>= `start_s`).
        label: the segment's label: a phoneme, a full-context label, a word, or `""` for an unlabelled gap
            (TextGrid intervals left empty, e.g. silences written by the Montreal Forced Aligner).
    """

    start_s: float
    end_s: float
    label: str

    def __post_init__(self):
        if not (self.start_s >= 0.0 and self.end_s >= self.start_s):
            raise ValueError(
                f"Segment {self.label!r} has start_s={self.start_s} and end_s={self.end_s}; "
                "times must satisfy 0 <= start_s <= end_s."
            )

    @property
    def duration_s(self) -> float:
        """Length of the segment in seconds."""
        return self.end_s - self.start_s


def seconds_to_hts_units(seconds: float) -> int:
    """Convert seconds to the nearest integer number of HTS 100 ns units (halves round up)."""
    return int(math.floor(seconds * HTS_UNITS_PER_SECOND + 0.5))


def read_hts_labels(path: str | os.PathLike) -> list[Segment]:
    """Read an HTS/Merlin label file (`start end label` per line, times in 100 ns units).

    Blank lines are ignored. The label is everything after the second field, kept verbatim, so full-context labels
    and state-level labels (`...[2]`) survive unchanged.

    Args:
        path: the `.lab` file.

    Returns:
        The segments in file order, times in seconds.

    Raises:
        ValueError: a line lacks times (a label-only file, e.g. Merlin's untimed labels, cannot be used for
            alignment), has non-integer times or an end before its start. The message names the file and line.
    """
    path = Path(path)
    segments = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            fields = stripped.split(maxsplit=2)
            if len(fields) != 3:
                raise ValueError(
                    f"{path}:{line_number}: expected 'start end label' with times in 100 ns units, got "
                    f"{stripped!r}. Untimed label files cannot give alignments; align the corpus first "
                    "(e.g. with the Montreal Forced Aligner)."
                )
            try:
                start_units, end_units = int(fields[0]), int(fields[1])
            except ValueError:
                raise ValueError(
                    f"{path}:{line_number}: start and end must be integers in 100 ns units, got "
                    f"{fields[0]!r} and {fields[1]!r}."
                ) from None
            if start_units < 0 or end_units < start_units:
                raise ValueError(
                    f"{path}:{line_number}: end {end_units} is before start {start_units} (or start is negative); "
                    "fix the label file."
                )
            segments.append(Segment(start_units / HTS_UNITS_PER_SECOND, end_units / HTS_UNITS_PER_SECOND, fields[2]))
    return segments


def write_hts_labels(path: str | os.PathLike, segments: Iterable[Segment]) -> None:
    """Write segments as an HTS label file, atomically.

    Times are rounded to the nearest 100 ns unit (halves round up). Contiguous segments stay contiguous because a
    shared boundary is the same float and rounds to the same integer.

    Args:
        path: the `.lab` file to write; parent folders are created.
        segments: the `Segment`s. Labels must not contain line breaks.
    """
    lines = []
    for segment in segments:
        if "\n" in segment.label or "\r" in segment.label:
            raise ValueError(f"Segment label {segment.label!r} contains a line break; HTS labels are one per line.")
        label = segment.label if segment.label else "sil"  # HTS lines need a label; empty gaps are silence.
        lines.append(f"{seconds_to_hts_units(segment.start_s)} {seconds_to_hts_units(segment.end_s)} {label}\n")
    atomic_write_text(path, "".join(lines))


def _choose_interval_tier(textgrid, tier, path):
    if tier is not None:
        if tier not in textgrid.tierNames:
            raise ValueError(f"{path}: no tier named {tier!r}; the file has tiers {list(textgrid.tierNames)}.")
        chosen = textgrid.getTier(tier)
        if not isinstance(chosen, IntervalTier):
            raise ValueError(f"{path}: tier {tier!r} is a point tier; alignments need an interval tier.")
        return chosen
    interval_tiers = [t for t in textgrid.tiers if isinstance(t, IntervalTier)]
    if not interval_tiers:
        raise ValueError(f"{path}: the TextGrid has no interval tier to read alignments from.")
    # The Montreal Forced Aligner names tiers "phones" or "<speaker> - phones".
    for candidate in interval_tiers:
        if candidate.name.strip().lower().endswith("phones"):
            return candidate
    return interval_tiers[0]


def read_textgrid(path: str | os.PathLike, tier: str | None = None) -> list[Segment]:
    """Read one interval tier of a Praat TextGrid (short or long text format, UTF-8 or UTF-16) with praatio.

    Args:
        path: the `.TextGrid` file.
        tier: the tier's name. `None` picks the first interval tier whose name ends in `phones` (the Montreal
            Forced Aligner's `phones` / `<speaker> - phones`), else the first interval tier.

    Returns:
        The tier's intervals in time order, covering the tier from its start to its end: intervals left empty in the
        file (silences in MFA output) come back with label `""`.

    Raises:
        ValueError: the file cannot be parsed, the named tier is missing or is a point tier.
    """
    path = Path(path)
    try:
        textgrid = praatio_textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    except Exception as error:  # praatio raises several unrelated exception types on malformed files.
        raise ValueError(f"{path}: cannot parse as a Praat TextGrid ({error}).") from error
    chosen = _choose_interval_tier(textgrid, tier, path)
    return [Segment(float(start), float(end), str(label)) for start, end, label in chosen.entries]


def write_textgrid(path: str | os.PathLike, segments: Iterable[Segment], tier: str = "phones") -> None:
    """Write segments as a one-tier Praat TextGrid (long text format, UTF-8), atomically.

    Gaps between segments are written as empty intervals, as Praat expects. Segments of zero length cannot be
    represented in a TextGrid and raise `ValueError`.

    Args:
        path: the `.TextGrid` file to write.
        segments: the `Segment`s in time order, not overlapping.
        tier: the interval tier's name.
    """
    segments = list(segments)
    if not segments:
        raise ValueError(f"No segments to write to {path}; a TextGrid tier needs at least one interval.")
    for segment in segments:
        if segment.end_s <= segment.start_s:
            raise ValueError(f"Segment {segment} has zero length; TextGrid intervals must be longer than zero.")
    entries = [(segment.start_s, segment.end_s, segment.label) for segment in segments if segment.label != ""]
    start_s = min(segment.start_s for segment in segments)
    end_s = max(segment.end_s for segment in segments)
    textgrid = praatio_textgrid.Textgrid()
    textgrid.addTier(IntervalTier(tier, entries, start_s, end_s))
    with atomic_output(path) as temporary:
        textgrid.save(str(temporary), format="long_textgrid", includeBlankSpaces=True, minimumIntervalLength=None)


def read_alignment(path: str | os.PathLike, tier: str | None = None) -> list[Segment]:
    """Read an alignment file by its suffix: `.lab` as HTS labels, `.TextGrid` as a Praat TextGrid."""
    path = Path(path)
    if path.suffix.lower() == ".textgrid":
        return read_textgrid(path, tier=tier)
    if path.suffix.lower() in HTS_LABEL_SUFFIXES:
        return read_hts_labels(path)
    raise ValueError(f"{path}: unknown alignment file type; use an HTS '.lab' file or a Praat '.TextGrid'.")


def segments_to_frames(segments: Iterable[Segment], frame_period_ms: float = 5.0) -> list[tuple[int, int, str]]:
    """Map segments to ranges of acoustic frames.

    Rounding rule: a boundary at time `t` goes to frame index `floor(t / frame_period + 1/2)` (nearest frame
    boundary, halves up), computed exactly in integer 100 ns units. Segment `[start, end)` covers frames
    `[frame(start), frame(end))`. Because each boundary maps to one frame index, segments that touch in time touch
    in frames: no frame is lost or counted twice, and the frame counts of contiguous segments add up to
    `frame(last end) - frame(first start)`. A segment shorter than about half a frame may get zero frames
    (`start_frame == end_frame`); it is kept so indices line up with the input list.

    Args:
        segments: the `Segment`s in time order, not overlapping.
        frame_period_ms: frame shift in milliseconds; must be a whole number of 100 ns units (5.0 ms is 50,000).

    Returns:
        One `(start_frame, end_frame, label)` per segment; `end_frame` is exclusive.

    Raises:
        ValueError: non-positive or non-representable frame period, or overlapping / unordered segments.
    """
    period_units_float = frame_period_ms * HTS_UNITS_PER_SECOND / 1000.0
    period_units = int(round(period_units_float))
    if period_units <= 0 or abs(period_units - period_units_float) > 1e-6:
        raise ValueError(
            f"frame_period_ms={frame_period_ms} must be positive and a whole number of 100 ns units (e.g. 5.0)."
        )

    def frame_of(seconds: float) -> int:
        return (2 * seconds_to_hts_units(seconds) + period_units) // (2 * period_units)

    frames = []
    previous_end_units = None
    for segment in segments:
        start_units = seconds_to_hts_units(segment.start_s)
        if previous_end_units is not None and start_units < previous_end_units:
            raise ValueError(
                f"Segment {segment} starts before the previous one ends; segments must be in time order "
                "and not overlap."
            )
        previous_end_units = seconds_to_hts_units(segment.end_s)
        frames.append((frame_of(segment.start_s), frame_of(segment.end_s), segment.label))
    return frames


def find_alignment(wav_path: str | os.PathLike) -> Path | None:
    """Find the alignment file for a wav file, or `None` if there is none.

    Looks, in this order, for `<stem>.lab` then `<stem>.TextGrid` (or `.textgrid`): beside the wav, in a
    `labels/` folder beside the wav, and in a `labels/` folder beside the wav's folder (the `wavs/` +
    `labels/` layout of our teacher corpus).
    """
    wav_path = Path(wav_path)
    stem = wav_path.stem
    folders = [wav_path.parent, wav_path.parent / "labels", wav_path.parent.parent / "labels"]
    for folder in folders:
        for suffix in HTS_LABEL_SUFFIXES + TEXTGRID_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None
