"""Model builders: the MLMS acoustic model (paper sec. 2), its SLSS baseline, and the phoneme duration model."""

from mlms_keras.models.acoustic import (  # noqa: F401
    ACOUSTIC_DIM,
    PRESETS,
    MLMSConfig,
    build_mlms_model,
    build_slss_model,
    config_of,
    reset_streaming_state,
)
