"""Text to speech with a zoo voice (`Synthesizer`), and oracle-duration synthesis of a prepared utterance."""

from mlms_keras.synthesis.synthesizer import Synthesizer, split_sentences  # noqa: F401
