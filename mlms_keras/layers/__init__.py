"""Custom Keras layers of the MLMS acoustic model (Li & Zen 2016).

- `ClusterAdaptiveTowers`: the mean tower plus L language basis towers weighted by a language code (Eq. 1).
- `SpeakerRNNOutput`: one linear recurrent output layer per speaker (Eq. 2).
- `ProjectedLSTM`, `ProjectedLSTMCell`: an LSTM with a recurrent projection (LSTMP, Sak et al. 2014).

The layers need Keras's TensorFlow backend; importing this package under another backend raises
`KerasBackendError`, which says to set `KERAS_BACKEND=tensorflow`. They are registered for Keras
serialization under the package name `SERIALIZATION_PACKAGE` (`"mlms_keras"`), so saved models name them
`mlms_keras>ClusterAdaptiveTowers` and so on.
"""

from mlms_keras.layers.backend import KerasBackendError, require_tensorflow_backend

# Before the layer modules import TensorFlow ops: a clear error rather than a failure at the first call.
require_tensorflow_backend()

from mlms_keras.layers.lstmp import ProjectedLSTM, ProjectedLSTMCell  # noqa: E402
from mlms_keras.layers.serialization import SERIALIZATION_PACKAGE  # noqa: E402
from mlms_keras.layers.speaker_output import SpeakerRNNOutput  # noqa: E402
from mlms_keras.layers.towers import ClusterAdaptiveTowers  # noqa: E402

__all__ = [
    "SERIALIZATION_PACKAGE",
    "ClusterAdaptiveTowers",
    "KerasBackendError",
    "ProjectedLSTM",
    "ProjectedLSTMCell",
    "SpeakerRNNOutput",
]
