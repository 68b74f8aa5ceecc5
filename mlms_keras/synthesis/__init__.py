"""Text to speech with a zoo voice (`Synthesizer`), and oracle-duration synthesis of a prepared utterance."""

from mlms_keras.synthesis.oracle import UtteranceSynthesis, synthesize_utterance
from mlms_keras.synthesis.synthesizer import Synthesizer, split_sentences

__all__ = ["Synthesizer", "UtteranceSynthesis", "split_sentences", "synthesize_utterance"]
