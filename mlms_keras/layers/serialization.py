"""The package name under which every MLMS layer is registered with Keras serialization.

`.keras` files, zoo voice configs and presets name the layers `mlms_keras>ClusterAdaptiveTowers`,
`mlms_keras>SpeakerRNNOutput`, `mlms_keras>ProjectedLSTM` and `mlms_keras>ProjectedLSTMCell`,
whatever module defines them. Changing this name would orphan every saved model.
"""

__all__ = ["SERIALIZATION_PACKAGE"]

SERIALIZATION_PACKAGE = "mlms_keras"
