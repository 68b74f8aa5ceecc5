"""The tiny teacher corpus that several test folders prepare (`prepared_corpus` in conftest.py builds it)."""

#: Speakers of the default tiny corpus: 2 languages, 3 speakers, 15 utterances (train: 8 en-us, 4 fr).
TINY_CORPUS_SPEAKERS = ("en-us-female", "en-us-male", "fr-female")
