"""Custom Keras layers of the MLMS acoustic model (Li & Zen 2016)."""

from mlms_keras.layers.lstmp import ProjectedLSTM, ProjectedLSTMCell
from mlms_keras.layers.speaker_output import SpeakerRNNOutput
from mlms_keras.layers.towers import ClusterAdaptiveTowers

__all__ = ["ClusterAdaptiveTowers", "ProjectedLSTM", "ProjectedLSTMCell", "SpeakerRNNOutput"]
