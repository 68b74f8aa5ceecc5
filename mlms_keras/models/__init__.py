"""Model builders: the MLMS acoustic model (paper sec. 2), its SLSS baseline, and the phoneme duration model.

The acoustic model's names are re-exported here; the duration model lives in `mlms_keras.models.duration`.
"""

from mlms_keras.models.acoustic import (
    ACOUSTIC_DIM,
    PRESETS,
    MLMSConfig,
    build_mlms_model,
    build_slss_model,
    config_of,
    reset_streaming_state,
)

__all__ = [
    "ACOUSTIC_DIM",
    "PRESETS",
    "MLMSConfig",
    "build_mlms_model",
    "build_slss_model",
    "config_of",
    "reset_streaming_state",
]
