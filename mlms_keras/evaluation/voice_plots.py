"""Pictures for the voice report: a teacher's and a voice's spectrograms and F0 contours, one above the other.

`mlms eval-voice --plots` writes one PNG per chosen utterance (`plot_comparison`): the teacher's spectrogram, the
voice's spectrogram (same colour scale, 80 dB range), and both F0 contours (WORLD, voiced frames only). Harmonics
show as horizontal stripes in the voiced parts of a spectrogram; a voice that whispers shows noise instead.
"""

from __future__ import annotations

import os

import numpy as np

from mlms_keras import vocoder
from mlms_keras.utils.fileio import atomic_output

__all__ = ["DYNAMIC_RANGE_DB", "choose_plots", "plot_comparison", "spectrogram_db"]

#: Decibels below the loudest bin shown in the spectrograms.
DYNAMIC_RANGE_DB = 80.0
_FFT = 1024
_HOP = 256


def choose_plots(plan, limit: int) -> set[int]:
    """Indices of at most `limit` utterances of an `evaluation_plan` to plot: the first of each kind (native,
    adapted, cross-language), then the first of each further (kind, language), in plan order."""
    first_of = {}
    for index, (_, language, _, kind) in enumerate(plan):
        first_of.setdefault((kind, language), index)
    by_kind = {}
    for (kind, _), index in sorted(first_of.items(), key=lambda item: item[1]):
        by_kind.setdefault(kind, index)
    chosen = sorted(by_kind.values())[:limit]
    for index in sorted(first_of.values()):
        if len(chosen) >= limit:
            break
        if index not in chosen:
            chosen.append(index)
    return set(chosen)


def spectrogram_db(wave, fft_size: int = _FFT, hop: int = _HOP) -> np.ndarray:
    """(frequency bins, frames) power in dB of a (samples,) wave: Hann-windowed frames of `fft_size`, `hop` apart."""
    wave = np.asarray(wave, np.float64)
    padded = np.pad(wave, (fft_size // 2, fft_size // 2))
    count = max(1, 1 + (padded.size - fft_size) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(padded, fft_size)[::hop][:count]
    power = np.abs(np.fft.rfft(frames * np.hanning(fft_size), axis=1)) ** 2
    return 10.0 * np.log10(np.maximum(power.T, 1e-12))


def plot_comparison(
    path: str | os.PathLike, teacher_wave, voice_wave, sample_rate: int, analysis: dict, title: str
) -> None:
    """Writes a PNG comparing the teacher's and the voice's speech of one sentence (module docstring).

    Args:
        path: the PNG file (written atomically).
        teacher_wave, voice_wave: (samples,) float waves in [-1, 1].
        sample_rate: Hz of both.
        analysis: `mlms_keras.vocoder.analyze` settings for the F0 contours (method and range).
        title: the figure's title (speaker, language, text).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 7.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 1)
    spectrograms = [spectrogram_db(teacher_wave), spectrogram_db(voice_wave)]
    top = max(spectrogram.max() for spectrogram in spectrograms)
    seconds = max(len(teacher_wave), len(voice_wave)) / sample_rate
    for axis, spectrogram, name in zip(axes[:2], spectrograms, ("teacher (espeak-ng)", "voice")):
        duration = spectrogram.shape[1] * _HOP / sample_rate
        axis.imshow(
            spectrogram,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - DYNAMIC_RANGE_DB,
            vmax=top,
            extent=(0.0, duration, 0.0, sample_rate / 2000.0),
        )
        axis.set_xlim(0.0, seconds)
        axis.set_ylabel("kHz")
        axis.set_title(name, fontsize=9)
    for wave, name, colour in ((teacher_wave, "teacher", "tab:blue"), (voice_wave, "voice", "tab:orange")):
        features = vocoder.analyze(
            np.asarray(wave, np.float64), sample_rate, max_clipped_fraction=1.0, name=name, **analysis
        )
        f0 = np.where(features.vuv > 0.5, np.exp(features.lf0), np.nan)
        axes[2].plot(np.arange(f0.size) * vocoder.FRAME_PERIOD_MS / 1000.0, f0, ".", ms=2, color=colour, label=name)
    axes[2].set_xlim(0.0, seconds)
    axes[2].set_xlabel("seconds")
    axes[2].set_ylabel("F0 (Hz)")
    axes[2].legend(loc="upper right", fontsize=8)
    figure.suptitle(title[:110], fontsize=10)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png")
