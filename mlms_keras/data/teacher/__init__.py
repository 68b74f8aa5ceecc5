"""The teacher corpus: the package's default multilingual multi-speaker data, spoken by espeak-ng.

`mlms corpus build OUT --preset tiny|small|paper-scale` mirrors Table 1 of Li & Zen (2016): US and UK English
(a female and a male speaker each), French, Italian, German and Spanish (a female speaker each) for training,
and Polish and Brazilian Portuguese (a female speaker each) as limited-data adaptation languages. Every speaker
is a distinct espeak-ng voice variant (f1-f5 and, as espeak-ng has only five "f" variants, steph, belinda and
Annie for the last three women; m3 and m1 for the men) with its own base pitch, pitch range and speaking
rate (variants change pitch and timbre, the rate changes timing).

Presets (train / dev utterances per speaker; speaker order: en-us female, en-us male, en-gb female, en-gb male,
fr, it, de, es, pl, pt-br):

| preset | train | dev | total |
|---|---|---|---|
| `tiny` | 4 per training speaker, 2 per adaptation speaker; sentences of at most 8 words | 1 | 46 |
| `small` | Table 1 / 50, rounded: 710, 153, 428, 72, 598, 598, 491, 397, 18, 18 | 5 | 3 533 |
| `paper-scale` | Table 1: 35 493, 7 652, 21 403, 3 587, 29 924, 29 897, 24 535, 19 872, 900, 900 | 100 | 175 163 |

`tiny` is for tests. Measured on 2 shared cores with 2 workers: tiny about 1 s, small 46 s and 510 MB;
paper-scale extrapolates to about 40 min and 25 GB. Scaling keeps the adaptation languages' limited amount
relative to the training languages (900 vs 35 493 in the paper).

Output folder:

- `wavs/<id>.wav`: 16-bit PCM, 22 050 Hz, mono; espeak-ng's speech between a leading and a trailing silence
  (150-350 ms each, drawn per utterance) with a -80 dBFS Gaussian dither so that no frame is digital zero
  (WORLD analysis takes logarithms).
- `labels/<id>.lab`: HTS mono labels (100 ns units): one segment per phoneme from espeak-ng's phoneme events
  (symbols are espeak-ng mnemonics without stress, as `mlms_keras.frontend.espeak.Phoneme.symbol`), "sil" at
  both ends and "pau" for pauses inside the utterance. espeak-ng reports some phonemes at the same sample as
  the next one because it renders them inside a neighbour's transition (the /l/ of "smiles" or "school", the
  /w/ of French "trois"); they keep a zero-length segment, so the label phones always equal the frontend's
  phonemes, and get 0 frames.
- `metadata.csv`: `id|text|language|speaker`, one line per utterance, no header (LJSpeech / M-AILABS style).
- `corpus.json` (format `mlms-teacher-corpus`): languages, speakers (gender, voice, F0 range in Hz for WORLD
  analysis), counts, splits (train/dev ids), seed, preset, skipped utterances and versions.

The build is deterministic for a seed: the same bytes on the same espeak-ng version, whatever the number of
workers and however often it was interrupted (see `mlms_keras.data.teacher.build`). It shows a progress bar,
writes every file atomically, and resumes: an utterance whose label file exists (labels are written after the
wav) is not rebuilt. A failing utterance is logged, skipped and listed in `corpus.json`.

**Any language** (`mlms corpus build OUT --languages sv,cs --utterances 200 --voice-variant f2`): one new speaker
per language, `<code>-<variant>` (e.g. `sv-f2`; that espeak-ng variant at 165 words/min), with `utterances`
utterances (a tenth in the dev split). The paper's eight languages take their grammar's sentences; every other
language with a wordfreq list takes sentences of 4-9 frequent words (`mlms_keras.data.teacher.words`; word salad,
but each word pronounced natively). `corpus.json` then has `"preset": null`, a `"build"` entry with these settings,
and each language's sentence source. The files are the same as a preset's, so `mlms prepare` reads them (with a
feature layout that covers the languages).

The package: `speakers` (the speakers, presets and utterance plans), `words` (sentences from word-frequency lists)
and `build` (rendering and the build).
"""

from mlms_keras.data.teacher.build import (
    CORPUS_FORMAT,
    CORPUS_FORMAT_VERSION,
    DITHER_STD,
    SILENCE_RANGE_S,
    BuildReport,
    build_teacher_corpus,
    event_segments,
    render_utterance,
)
from mlms_keras.data.teacher.speakers import (
    DEFAULT_VARIANT,
    PRESETS,
    TEACHER_SPEAKERS,
    TINY_MAX_WORDS,
    TeacherSpeaker,
    UtteranceSpec,
    default_dev_count,
    get_speaker,
    language_speaker,
    plan_language_utterances,
    plan_utterances,
    preset_counts,
    sentence_source,
    speaker_f0_range_hz,
)
from mlms_keras.data.teacher.words import WORDFREQ_CODES, word_pool, word_sentences, wordfreq_code, wordfreq_languages

__all__ = [
    "CORPUS_FORMAT",
    "CORPUS_FORMAT_VERSION",
    "DEFAULT_VARIANT",
    "DITHER_STD",
    "PRESETS",
    "SILENCE_RANGE_S",
    "TEACHER_SPEAKERS",
    "TINY_MAX_WORDS",
    "WORDFREQ_CODES",
    "BuildReport",
    "TeacherSpeaker",
    "UtteranceSpec",
    "build_teacher_corpus",
    "default_dev_count",
    "event_segments",
    "get_speaker",
    "language_speaker",
    "plan_language_utterances",
    "plan_utterances",
    "preset_counts",
    "render_utterance",
    "sentence_source",
    "speaker_f0_range_hz",
    "word_pool",
    "word_sentences",
    "wordfreq_code",
    "wordfreq_languages",
]
