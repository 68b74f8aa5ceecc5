"""mlms-keras: multi-language multi-speaker LSTM-RNN acoustic models for parametric TTS.

Implements Li & Zen (Interspeech 2016), "Multi-Language Multi-Speaker Acoustic Modeling for LSTM-RNN based
Statistical Parametric Speech Synthesis", on Keras 3 and TensorFlow. `docs/architecture.md` maps the package.

The names below are the small top-level API; each is imported from its home on first use, so `import mlms_keras`
stays fast and does not load TensorFlow.

Example:
    >>> import mlms_keras
    >>> synthesizer = mlms_keras.Synthesizer.from_zoo("teacher-small")        # doctest: +SKIP
    >>> wave = synthesizer.synthesize("Bonjour.", "fr", "fr-female")           # doctest: +SKIP
"""

from __future__ import annotations

from mlms_keras.utils.lazy import lazy_exports

__version__ = "0.2.0"

#: Public name -> the module that defines it.
_HOMES = {
    "load_voice": "mlms_keras.zoo",
    "Synthesizer": "mlms_keras.synthesis",
    "MLMSConfig": "mlms_keras.models",
    "build_mlms_model": "mlms_keras.models",
    "build_slss_model": "mlms_keras.models",
    "load_dataset": "mlms_keras.data",
    "ClusterAdaptiveTowers": "mlms_keras.layers",
    "SpeakerRNNOutput": "mlms_keras.layers",
    "ProjectedLSTM": "mlms_keras.layers",
    "ProjectedLSTMCell": "mlms_keras.layers",
}

__all__ = ["__version__", *_HOMES]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
