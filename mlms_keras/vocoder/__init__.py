"""WORLD vocoder features and audio I/O: waveform <-> 49-dim frames every 5 ms.

- `mlms_keras.vocoder.world`: the analysis and synthesis (mel-cepstra, continuous log F0, V/UV, 7 band
  aperiodicities) and the postfilter;
- `mlms_keras.vocoder.aperiodicity`: the 7-band aperiodicity coder and its band edges;
- `mlms_keras.vocoder.audio`: reading, resampling and writing audio files.

The names below are the public API (`from mlms_keras import vocoder`, then `vocoder.analyze(...)`).
"""

from mlms_keras.vocoder.aperiodicity import (
    MIN_SAMPLE_RATE,
    NUM_BAP,
    band_centres_hz,
    band_edges_hz,
    code_band_aperiodicity,
    decode_band_aperiodicity,
)
from mlms_keras.vocoder.world import (
    BAP,
    DEFAULT_POSTFILTER_BETA,
    DEFAULT_SAMPLE_RATE,
    F0_RANGE_HZ,
    FEATURE_DIM,
    FRAME_PERIOD_MS,
    LF0,
    MCEP,
    NUM_MCEP,
    SUPPORTED_SAMPLE_RATES,
    VUV,
    AcousticFeatures,
    analyze,
    analyze_files,
    clipped_fraction,
    continuous_lf0,
    estimate_f0_range,
    frame_energy,
    mcep_alpha,
    mcep_to_spectrum,
    num_frames_for,
    postfilter,
    synthesize,
)

__all__ = [
    "BAP",
    "DEFAULT_POSTFILTER_BETA",
    "DEFAULT_SAMPLE_RATE",
    "F0_RANGE_HZ",
    "FEATURE_DIM",
    "FRAME_PERIOD_MS",
    "LF0",
    "MCEP",
    "MIN_SAMPLE_RATE",
    "NUM_BAP",
    "NUM_MCEP",
    "SUPPORTED_SAMPLE_RATES",
    "VUV",
    "AcousticFeatures",
    "analyze",
    "analyze_files",
    "band_centres_hz",
    "band_edges_hz",
    "clipped_fraction",
    "code_band_aperiodicity",
    "continuous_lf0",
    "decode_band_aperiodicity",
    "estimate_f0_range",
    "frame_energy",
    "mcep_alpha",
    "mcep_to_spectrum",
    "num_frames_for",
    "postfilter",
    "synthesize",
]
