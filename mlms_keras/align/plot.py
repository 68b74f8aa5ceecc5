"""A picture of an alignment for checking by eye: waveform, spectrogram, and the phone and word tiers (PNG)."""

from __future__ import annotations

import os

import numpy as np

from mlms_keras.frontend.labels import Segment
from mlms_keras.utils.fileio import atomic_output

__all__ = ["plot_alignment"]


def _tier(axis, segments: list[Segment], duration_s: float, name: str, colour: str) -> None:
    axis.set_xlim(0, duration_s)
    axis.set_ylim(0, 1)
    axis.set_yticks([0.5], [name])
    for index, segment in enumerate(segments):
        if segment.end_s <= segment.start_s:
            continue
        silent = segment.label in ("sil", "pau", "")
        axis.axvspan(segment.start_s, segment.end_s, color="0.93" if silent else colour, alpha=0.5, lw=0)
        axis.axvline(segment.start_s, color="0.3", lw=0.6)
        size = 8 if (segment.end_s - segment.start_s) > 0.04 else 6
        axis.text(
            (segment.start_s + segment.end_s) / 2,
            0.5 + (0.18 if index % 2 and size == 6 else 0.0),
            segment.label,
            ha="center",
            va="center",
            fontsize=size,
            clip_on=True,
        )


def plot_alignment(
    path: str | os.PathLike,
    wave: np.ndarray,
    sample_rate: int,
    phones: list[Segment],
    words: list[Segment],
    title: str = "",
) -> None:
    """Write a PNG of `wave` `(samples,)` with its spectrogram and the phone and word tiers (seconds), atomically.

    Phone boundaries are drawn through the waveform and the spectrogram too, so each can be checked against the
    signal.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    duration_s = len(wave) / float(sample_rate)
    figure, axes = pyplot.subplots(
        4,
        1,
        figsize=(max(10.0, 3.2 * duration_s), 7.0),
        sharex=True,
        gridspec_kw={"height_ratios": [1.2, 2.4, 0.6, 0.6]},
    )
    times = np.arange(len(wave)) / float(sample_rate)
    axes[0].plot(times, wave, lw=0.4, color="0.2")
    axes[0].set_ylabel("wave")
    window = int(0.025 * sample_rate)
    axes[1].specgram(wave, NFFT=window, Fs=sample_rate, noverlap=window - int(0.005 * sample_rate), cmap="magma")
    axes[1].set_ylabel("Hz")
    axes[1].set_ylim(0, min(8000, sample_rate / 2))
    for axis in axes[:2]:
        for segment in phones:
            if segment.end_s > segment.start_s:
                axis.axvline(segment.start_s, color="cyan" if axis is axes[1] else "tab:blue", lw=0.5, alpha=0.8)
    _tier(axes[2], phones, duration_s, "phones", "tab:blue")
    _tier(axes[3], words, duration_s, "words", "tab:orange")
    axes[3].set_xlabel("time (s)")
    axes[0].set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    pyplot.close(figure)
