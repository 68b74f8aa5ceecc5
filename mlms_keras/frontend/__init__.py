"""Text frontend: text -> phonemes and linguistic features (Li & Zen 2016, sections 2-3).

- `espeak`: libespeak-ng through ctypes (espeakng-loader wheel): text analysis, synthesis, phoneme events.
- `layout`: the universal `FeatureLayout`: per-language feature sets, their union, articulatory features.
- `linguistic`: phoneme rows, alignments -> phoneme features and durations, frame-level expansion.
- `labels`: HTS label files and Praat TextGrids.

Nothing is imported here, so `import mlms_keras.frontend.labels` does not load libespeak-ng.
"""
