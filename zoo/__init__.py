"""The shipped pretrained voices (package data): one folder per voice and `registry.json`.

Use them through `mlms_keras.zoo` (`list_voices`, `load_voice`) or `mlms say` / `mlms zoo list`; this package
only makes `pip install` carry the files.
"""
