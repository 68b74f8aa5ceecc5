"""Text frontend: text -> phonemes and linguistic features (Li & Zen 2016, sections 2-3).

Modules:
    espeak      ctypes binding to libespeak-ng (espeakng-loader wheel): analysis, synthesis, phoneme events.
    linguistic  per-language feature sets, the universal `FeatureLayout`, frame-level expansion, features of
                aligned corpus utterances.
    labels      HTS label files and Praat TextGrids.

Nothing is imported here, so `import mlms_keras.frontend.labels` does not load libespeak-ng.
"""
