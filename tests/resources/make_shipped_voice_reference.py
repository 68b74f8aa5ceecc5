"""Records the shipped voice's output for one fixed sentence per language (`shipped_voice_reference.npz`).

Run once, on the code before a change that must not move numerics, or after a change meant to move them (the
[structure] reorganisation recorded it from commit 6d69d37; [voices] recorded it again when the sentence-edge
silences were capped at 32 frames, the one output change); `tests/synthesis/test_shipped_voice_reference.py`
then requires bit-identical output:

    python tests/resources/make_shipped_voice_reference.py tests/resources/shipped_voice_reference.npz
"""

import hashlib
import sys

import numpy as np

from mlms_keras.synthesis import Synthesizer

VOICE = "teacher-small"
#: One sentence per language, each spoken by the language's first native speaker.
SENTENCES = {
    "en-us": ("en-us-female", "The quiet garden was full of light."),
    "en-gb": ("en-gb-female", "We walked along the river after lunch."),
    "fr": ("fr-female", "Le petit chat dort sur la chaise."),
    "it": ("it-female", "Domani andiamo al mercato con mia sorella."),
    "de": ("de-female", "Wir fahren morgen mit dem Zug nach Hause."),
    "es": ("es-female", "El tren sale temprano por la mañana."),
    "pl": ("pl-female", "Jutro pojedziemy do babci na obiad."),
    "pt-br": ("pt-br-female", "Amanhã vamos ao mercado com minha irmã."),
}


def voice_outputs(synthesizer):
    """{language: (durations (phonemes,) int, features (frames, 49) float32, waveform sha256 hex)}."""
    outputs = {}
    for language, (speaker, sentence) in SENTENCES.items():
        _, durations = synthesizer.frame_features(sentence, language, speaker)
        features = synthesizer.acoustic_features(sentence, language, speaker).astype(np.float32)
        wave = np.ascontiguousarray(synthesizer.synthesize(sentence, language, speaker), np.float32)
        outputs[language] = (np.asarray(durations), features, hashlib.sha256(wave.tobytes()).hexdigest())
    return outputs


def main(path):
    outputs = voice_outputs(Synthesizer.from_zoo(VOICE))
    arrays = {}
    for language, (durations, features, wave_sha256) in outputs.items():
        arrays[f"{language}/durations"] = durations
        arrays[f"{language}/features"] = features
        arrays[f"{language}/wave_sha256"] = np.array(wave_sha256)
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
