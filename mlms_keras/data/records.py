"""The TFRecord schema of a prepared dataset: one `tf.train.Example` per utterance, all features unnormalised.

| field | type | content |
|---|---|---|
| `utterance_id` | bytes | the corpus id |
| `language`, `speaker` | int64 | ids in the manifest's tables |
| `language_code`, `speaker_name` | bytes | the same, by name |
| `num_frames` | int64 | frames of 5 ms |
| `linguistic` | bytes | little-endian float32, `num_frames x input_dim` (frame-level linguistic features) |
| `acoustic` | bytes | little-endian float32, `num_frames x 49` (vocoder parameters) |
| `num_phonemes` | int64 | phonemes, sil and pau included |
| `phoneme_linguistic` | bytes | little-endian float32, `num_phonemes x layout.dimension` |
| `durations` | int64 list | frames per phoneme after the frame fit (for duration models) |

`mlms prepare` writes records with `serialize_example`; `parse_example` reads the whole record (the acoustic
pipeline) and `parse_phoneme_example` only the phoneme-level fields (the duration model), leaving the frame
fields undecoded.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_float32", "parse_example", "parse_phoneme_example", "parse_raw_example", "serialize_example"]

_LITTLE_ENDIAN_FLOAT32 = np.dtype("<f4")


def _spec(fields=None) -> dict:
    import tensorflow as tf

    spec = {
        "utterance_id": tf.io.FixedLenFeature([], tf.string),
        "language": tf.io.FixedLenFeature([], tf.int64),
        "speaker": tf.io.FixedLenFeature([], tf.int64),
        "language_code": tf.io.FixedLenFeature([], tf.string),
        "speaker_name": tf.io.FixedLenFeature([], tf.string),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "linguistic": tf.io.FixedLenFeature([], tf.string),
        "acoustic": tf.io.FixedLenFeature([], tf.string),
        "num_phonemes": tf.io.FixedLenFeature([], tf.int64),
        "phoneme_linguistic": tf.io.FixedLenFeature([], tf.string),
        "durations": tf.io.VarLenFeature(tf.int64),
    }
    return spec if fields is None else {name: spec[name] for name in fields}


def serialize_example(utterance_id, language_id, speaker_id, language_code, speaker_name, prepared) -> bytes:
    """One utterance -> a serialised `tf.train.Example`.

    Args:
        utterance_id, language_code, speaker_name: strings.
        language_id, speaker_id: ids in the manifest's tables.
        prepared: an object with `linguistic` (frames, input_dim), `acoustic` (frames, 49), `phoneme_linguistic`
            (phonemes, layout.dimension) float arrays and `durations` (phonemes,) ints, e.g.
            `mlms_keras.data.prepare.PreparedUtterance`.
    """
    import tensorflow as tf

    def _bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    def _floats(array):
        return _bytes(np.ascontiguousarray(array, _LITTLE_ENDIAN_FLOAT32).tobytes())

    feature = {
        "utterance_id": _bytes(utterance_id.encode("utf-8")),
        "language": _ints([language_id]),
        "speaker": _ints([speaker_id]),
        "language_code": _bytes(language_code.encode("utf-8")),
        "speaker_name": _bytes(speaker_name.encode("utf-8")),
        "num_frames": _ints([prepared.linguistic.shape[0]]),
        "linguistic": _floats(prepared.linguistic),
        "acoustic": _floats(prepared.acoustic),
        "num_phonemes": _ints([prepared.phoneme_linguistic.shape[0]]),
        "phoneme_linguistic": _floats(prepared.phoneme_linguistic),
        "durations": _ints(prepared.durations),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_raw_example(serialized, fields=None) -> dict:
    """A serialised record -> dict of its raw fields (matrices still as bytes), for pipelines that filter first.

    Args:
        serialized: a scalar string tensor.
        fields: the field names to parse (default: all).
    """
    import tensorflow as tf

    return tf.io.parse_single_example(serialized, _spec(fields))


def decode_float32(raw, columns: int):
    """A raw matrix field (`linguistic`, `acoustic`, `phoneme_linguistic`) -> `(rows, columns)` float32 tensor."""
    import tensorflow as tf

    return tf.reshape(tf.io.decode_raw(raw, tf.float32, little_endian=True), [-1, columns])


def parse_example(serialized, input_dim: int, phoneme_dim: int, output_dim: int = 49) -> dict:
    """A serialised record -> dict of tensors, features unnormalised.

    Returns:
        `utterance_id`, `language_code`, `speaker_name` (string), `language`, `speaker`, `num_frames`,
        `num_phonemes` (int64 scalars), `linguistic` (frames, input_dim) float32, `acoustic` (frames, output_dim)
        float32, `phoneme_linguistic` (phonemes, phoneme_dim) float32, `durations` (phonemes,) int64.
    """
    import tensorflow as tf

    record = parse_raw_example(serialized)
    record["linguistic"] = decode_float32(record["linguistic"], input_dim)
    record["acoustic"] = decode_float32(record["acoustic"], output_dim)
    record["phoneme_linguistic"] = decode_float32(record["phoneme_linguistic"], phoneme_dim)
    record["durations"] = tf.sparse.to_dense(record["durations"])
    return record


def parse_phoneme_example(serialized, phoneme_dim: int) -> dict:
    """The phoneme-level fields of a serialised record, for the duration model.

    Returns:
        `utterance_id` (string), `phoneme_linguistic` (phonemes, phoneme_dim) float32 unnormalised, `durations`
        (phonemes,) float32 frames, `language` and `speaker` int32 scalars.
    """
    import tensorflow as tf

    record = parse_raw_example(serialized, ("utterance_id", "language", "speaker", "phoneme_linguistic", "durations"))
    return {
        "utterance_id": record["utterance_id"],
        "phoneme_linguistic": decode_float32(record["phoneme_linguistic"], phoneme_dim),
        "durations": tf.cast(tf.sparse.to_dense(record["durations"]), tf.float32),
        "language": tf.cast(record["language"], tf.int32),
        "speaker": tf.cast(record["speaker"], tf.int32),
    }
