"""mlms-keras: multi-language multi-speaker LSTM-RNN acoustic models for parametric TTS.

Implements Li & Zen (Interspeech 2016), "Multi-Language Multi-Speaker Acoustic Modeling for
LSTM-RNN based Statistical Parametric Speech Synthesis", on Keras 3 / TensorFlow.
"""

__version__ = "0.2.0"
