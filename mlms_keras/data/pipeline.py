"""`load_dataset`: tf.data pipelines over prepared shards that `model.fit` of the MLMS model takes directly.

Each element is `({"linguistic": (batch, frames, input_dim) float32, "language": (batch,) int32,
"speaker": (batch,) int32}, acoustic (batch, frames, 49) float32)`, optionally with a third element, the frame
mask `(batch, frames)` float32 (Keras uses it as the sample weight; `AcousticMetricsCallback` takes it).

Stages, in order: shard files (shuffled with the seed, optionally a share `shard=(index, count)` of them for
one worker of distributed training) -> GZIP TFRecord reading (interleaved) -> parsing -> filtering by language and
speaker (on the ids, before the feature bytes are decoded) -> decoding and normalisation `(x - mean) / std` with
the manifest's train-split statistics -> optional in-memory cache -> shuffle (seeded) -> repeat -> optional
balanced sampling over languages -> optional truncated-BPTT chunking -> bucketing by length and zero padding to the
bucket boundary -> prefetch.

**Padding.** Padding happens after normalisation, so padded frames are all-zero rows of `linguistic` (and of
`acoustic`), which the model's Masking layer turns into its mask. A real frame is never all zero: the
phoneme-identity inputs are left unnormalised (see `mlms_keras.data.manifest`) and every real frame has one
`C_phoneme=...` input equal to 1.

**Bucketing.** Utterances are grouped into a few length buckets and padded to the bucket's boundary, so batches
come in `len(boundaries)` shapes (plus the partial last batch of each bucket unless
`PipelineOptions.drop_remainder`): the
model XLA-compiles its time loops once per shape. Default boundaries: the 25/50/75/100 % quantiles of the
selected utterances' lengths, rounded up to multiples of 16 frames.

**Truncated BPTT** (`chunk_frames=N`; the paper trained with truncated BPTT). Each utterance is cut into
consecutive chunks of `N` frames (the last one zero-padded), and chunks are batched as independent sequences
of one shape `(batch, N)`. Gradients then flow back at most `N` frames, and the recurrent state starts from
zero at every chunk (the stateless model does not carry it across chunks, so the first frames of a chunk see no
left context; choose `N` well above the context the model needs, e.g. 200 frames = 1 s). Chunks are shuffled in
a small buffer so that a batch mixes utterances.

**Balanced sampling** (`PipelineOptions(balance_languages=True)`): rejection sampling on the repeated stream
keeps an utterance of language `u` with probability `min_count / count_u` (counts of the selected utterances), so
every selected language is drawn equally often whatever its share of the data (seeded). The stream is then
endless: pass `steps_per_epoch` (see `steps_per_epoch`) to `fit`.

**Determinism.** `PipelineOptions(deterministic=True)` keeps element order fixed in the parallel stages; with a
`seed` the shuffles (files, utterances, chunks, balancing) repeat exactly from run to run. `deterministic`
defaults to True when a seed is given or when `shuffle=False` (then batches follow the shards' record order, as
`read_utterances` yields them).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras.data.manifest import Manifest, is_identity_feature
from mlms_keras.data.records import decode_float32, parse_example, parse_raw_example

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "AUTO_CACHE_BYTES",
    "BUCKET_MULTIPLE",
    "DEFAULT_NUM_BUCKETS",
    "FRAME_MASK_KINDS",
    "PipelineOptions",
    "default_bucket_boundaries",
    "load_dataset",
    "read_utterances",
    "steps_per_epoch",
]

BUCKET_MULTIPLE = 16
DEFAULT_NUM_BUCKETS = 4
FRAME_MASK_KINDS = ("padding", "speech")
#: `cache="auto"` keeps the selected utterances in memory when their decoded frames take at most this many bytes.
AUTO_CACHE_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How `load_dataset` forms and orders batches: the settings most callers leave at their defaults.

    Attributes:
        bucket_boundaries: ascending padded lengths (frames); every utterance must fit the last one.
            Default: `default_bucket_boundaries` of the selected utterances.
        drop_remainder: drop each bucket's partial last batch (one batch shape per bucket).
        balance_languages: sample languages equally often (an endless stream; module docstring).
        deterministic: fixed element order in the parallel stages; default `True` when a `seed` is given or
            `shuffle` is off (shard order), `False` for unseeded shuffling (slightly faster).
        shuffle_buffer: utterances in the shuffle buffer (default: all selected, at most 256, about 600 MB; the
            shuffled file order and the round-robin shard assignment mix the rest).
    """

    bucket_boundaries: Sequence[int] | None = None
    drop_remainder: bool = False
    balance_languages: bool = False
    deterministic: bool | None = None
    shuffle_buffer: int | None = None


def _graph_function(function):
    """Trace `function` as written: the pipeline's functions have no Python control flow on tensors, so AutoGraph
    conversion is not needed (and it cannot parse several lambdas on one line)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)


def read_utterances(path, split: str | None = None, ids=None) -> Iterator[dict]:
    """Iterate over a prepared dataset's records as numpy (unnormalised), in shard order.

    Args:
        path: the prepared dataset folder.
        split: a split name, or None for all splits.
        ids: optional collection of utterance ids to keep.

    Yields:
        dicts as `parse_example` returns, with numpy values and `utterance_id`, `language_code`,
        `speaker_name` decoded to str.
    """
    import tensorflow as tf

    manifest = Manifest.load(path)
    wanted = set(ids) if ids is not None else None
    splits = [split] if split is not None else list(manifest.split_names)
    files = [file for name in splits for file in manifest.shard_paths(name)]
    if wanted is not None:
        files = [
            file
            for file in files
            if any(manifest.utterances[i]["shard"] in file for i in wanted if i in manifest.utterances)
        ]
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        record = parse_example(serialized, manifest.input_dim, manifest.layout.dimension, manifest.output_dim)
        utterance_id = record["utterance_id"].numpy().decode("utf-8")
        if wanted is not None and utterance_id not in wanted:
            continue
        values = {key: value.numpy() for key, value in record.items()}
        for key in ("utterance_id", "language_code", "speaker_name"):
            values[key] = values[key].decode("utf-8")
        yield values


def default_bucket_boundaries(
    lengths, num_buckets: int = DEFAULT_NUM_BUCKETS, multiple: int = BUCKET_MULTIPLE
) -> list[int]:
    """Padded lengths (frames) of `num_buckets` buckets: length quantiles rounded up to `multiple`, ascending."""
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("no utterances to bucket: the split or the language/speaker filter selects nothing.")
    quantiles = np.quantile(lengths, np.arange(1, num_buckets + 1) / num_buckets, method="higher")
    return sorted({int(math.ceil(q / multiple) * multiple) for q in quantiles})


def _selected_utterances(manifest, split, languages, speakers, shard_names=None) -> dict:
    """Utterance id -> manifest entry of the split's utterances in `languages`, `speakers` and `shard_names`."""
    return {
        uid: entry
        for uid, entry in manifest.utterances.items()
        if entry["split"] == split
        and (languages is None or entry["language"] in languages)
        and (speakers is None or entry["speaker"] in speakers)
        and (shard_names is None or entry["shard"] in shard_names)
    }


def _resolve_ids(manifest, languages, speakers):
    language_ids = None if languages is None else sorted({manifest.language_id(code) for code in languages})
    speaker_ids = None if speakers is None else sorted({manifest.speaker_id(name) for name in speakers})
    return language_ids, speaker_ids


def _normalisation_source(manifest, normalisation):
    if normalisation is None:
        source = manifest
    elif isinstance(normalisation, Manifest):
        source = normalisation
    else:
        source = Manifest.load(normalisation)
    if source is not manifest:
        manifest.layout.require_compatible(source.layout, what="normalisation statistics")
    identity = [index for index, name in enumerate(manifest.layout.frame_feature_names) if is_identity_feature(name)]
    if not (np.all(source.input_mean[identity] == 0.0) and np.all(source.input_std[identity] == 1.0)):
        raise ValueError(
            f"{source.folder}: phoneme-identity inputs are normalised in this manifest, so a real frame "
            "could become an all-zero (padding) row; re-run `mlms prepare` with this package version."
        )
    return source


def load_dataset(
    path,
    split: str = "train",
    batch_size: int = 16,
    *,
    languages: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    shuffle: bool | None = None,
    seed: int | None = None,
    repeat: bool = False,
    chunk_frames: int | None = None,
    frame_mask: str | None = None,
    normalisation: Manifest | str | os.PathLike | None = None,
    cache: bool | str = False,
    options: PipelineOptions | None = None,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `({"linguistic", "language", "speaker"}, acoustic[, frame_mask])` batches.

    Args:
        path: prepared dataset folder (from `mlms prepare`).
        split: `"train"` or `"dev"`.
        batch_size: utterances (or chunks) per batch.
        languages: language codes to keep (`None`: all), e.g. for an SLSS baseline or adaptation.
        speakers: speaker names to keep (`None`: all).
        shard: `(index, count)`: read only shard files `index::count` (one worker's share in distributed
            training).
        shuffle: shuffle files and utterances; default `True` for `"train"`, `False` otherwise.
        seed: seed of every shuffle; with a seed, runs repeat exactly.
        repeat: repeat forever (reshuffled each pass).
        chunk_frames: truncated-BPTT chunk length in frames (module docstring); replaces bucketing.
        frame_mask: `None`, `"padding"` (1 on real frames) or `"speech"` (1 on real non-silence frames, from the
            `C_phoneme=sil/pau` inputs: Merlin scores metrics without silence); yielded as a third element.
        normalisation: another prepared dataset (folder or `Manifest`) whose statistics to use, e.g. the base
            model's when preparing adaptation data; it must have the same feature layout.
        cache: keep decoded, normalised utterances in memory after the first pass. Only for small data: an
            utterance of 500 frames takes about 2.4 MB at input_dim 1193 (the small teacher preset: about 8 GB).
            `"auto"`: cache when the selected utterances take at most `AUTO_CACHE_BYTES` (1 GiB). A small
            selection from a big dataset (one adaptation speaker) then stops re-reading every shard each epoch.
        options: how batches are formed and ordered beyond that (`PipelineOptions`: bucket boundaries, partial
            batches, balanced sampling, determinism, shuffle buffer).

    Returns:
        `tf.data.Dataset`; padded frames are all-zero rows of `linguistic` and `acoustic`.

    Raises:
        ValueError: naming the argument: unknown split, language or speaker, empty selection, bad boundaries.

    Example:
    >>> train = load_dataset("data/prepared", "train", 16, seed=0, chunk_frames=200, repeat=True)  # doctest: +SKIP
    >>> balanced = load_dataset("data/prepared", "train", 16, seed=0,
    ...                         options=PipelineOptions(balance_languages=True))               # doctest: +SKIP
    """
    options = options or PipelineOptions()
    balance_languages, bucket_boundaries = options.balance_languages, options.bucket_boundaries
    import tensorflow as tf

    manifest = Manifest.load(path)
    files = manifest.shard_paths(split)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if frame_mask not in (None,) + FRAME_MASK_KINDS:
        raise ValueError(f"frame_mask must be None, 'padding' or 'speech', got {frame_mask!r}.")
    if chunk_frames is not None and chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1 or None, got {chunk_frames}.")
    if shard is not None:
        index, count = shard
        if not 0 <= index < count or count > len(files):
            raise ValueError(
                f"shard=({index}, {count}): need 0 <= index < count <= {len(files)} (the {split!r} "
                "split's shard files); prepare with a smaller --utterances-per-shard for more workers."
            )
        files = files[index::count]
    shuffle = (split == "train") if shuffle is None else shuffle
    # Unshuffled data keeps its order, and seeded data its seeded order; only unseeded shuffling may reorder freely.
    deterministic = (seed is not None or not shuffle) if options.deterministic is None else options.deterministic
    source = _normalisation_source(manifest, normalisation)
    language_ids, speaker_ids = _resolve_ids(manifest, languages, speakers)

    selected = _selected_utterances(
        manifest, split, languages, speakers, None if shard is None else {os.path.basename(f) for f in files}
    )
    if not selected:
        raise ValueError(
            f"{manifest.folder}: split {split!r} with languages={languages} and speakers={speakers} "
            "selects no utterance."
        )
    lengths = [entry["frames"] for entry in selected.values()]
    if cache == "auto":
        cache = sum(lengths) * (manifest.input_dim + manifest.output_dim + 1) * 4 <= AUTO_CACHE_BYTES
    elif cache not in (True, False):
        raise ValueError(f"cache must be True, False or 'auto', got {cache!r}.")
    if chunk_frames is None:
        boundaries = default_bucket_boundaries(lengths) if bucket_boundaries is None else list(bucket_boundaries)
        if boundaries != sorted(set(boundaries)) or boundaries[0] < 1:
            raise ValueError(f"bucket_boundaries must be ascending positive frame counts, got {bucket_boundaries}.")
        if max(lengths) > boundaries[-1]:
            longest = max(selected, key=lambda uid: selected[uid]["frames"])
            raise ValueError(
                f"bucket_boundaries: utterance {longest} has {max(lengths)} frames, more than the last "
                f"boundary {boundaries[-1]}; add a larger boundary."
            )

    input_dim, output_dim = manifest.input_dim, manifest.output_dim
    input_mean = tf.constant(source.input_mean)
    input_std = tf.constant(source.input_std)
    output_mean = tf.constant(source.output_mean)
    output_std = tf.constant(source.output_std)
    silence_dims = tf.constant(
        [
            index
            for index, name in enumerate(manifest.layout.frame_feature_names)
            if name in ("C_phoneme=sil", "C_phoneme=pau")
        ],
        tf.int32,
    )
    data_options = tf.data.Options()
    data_options.deterministic = bool(deterministic)

    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        file_dataset = file_dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = file_dataset.interleave(
        _graph_function(lambda file: tf.data.TFRecordDataset(file, compression_type="GZIP")),
        cycle_length=min(4, len(files)) if shuffle else 1,  # unshuffled: one shard after the other
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=bool(deterministic),
    )
    dataset = dataset.map(
        _graph_function(parse_raw_example),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=bool(deterministic),
    )
    if language_ids is not None:
        dataset = dataset.filter(_graph_function(lambda r: tf.reduce_any(tf.equal(r["language"], language_ids))))
    if speaker_ids is not None:
        dataset = dataset.filter(_graph_function(lambda r: tf.reduce_any(tf.equal(r["speaker"], speaker_ids))))

    def decode(record):
        linguistic = decode_float32(record["linguistic"], input_dim)
        acoustic = decode_float32(record["acoustic"], output_dim)
        linguistic = (linguistic - input_mean) / input_std
        element = {
            "linguistic": linguistic,
            "acoustic": (acoustic - output_mean) / output_std,
            "language": tf.cast(record["language"], tf.int32),
            "speaker": tf.cast(record["speaker"], tf.int32),
            "mask": tf.ones([tf.shape(linguistic)[0]], tf.float32),
        }
        if frame_mask == "speech":
            # Identity inputs are unnormalised, so C_phoneme=sil/pau are still 0/1 here.
            element["mask"] = 1.0 - tf.reduce_max(tf.gather(linguistic, silence_dims, axis=1), axis=1)
        return element

    dataset = dataset.map(
        _graph_function(decode), num_parallel_calls=tf.data.AUTOTUNE, deterministic=bool(deterministic)
    )
    if cache:
        dataset = dataset.cache()
    if shuffle:
        buffer = options.shuffle_buffer or min(len(selected), 256)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat or balance_languages:
        dataset = dataset.repeat()
    if balance_languages:
        dataset = _balance(dataset, manifest, selected, seed)
    if chunk_frames is not None:
        dataset = _chunk(dataset, chunk_frames, input_dim, output_dim)
        if shuffle:
            dataset = dataset.shuffle(4 * batch_size, seed=None if seed is None else seed + 1)
        dataset = dataset.batch(batch_size, drop_remainder=options.drop_remainder)
    else:
        dataset = _bucket(dataset, boundaries, batch_size, options.drop_remainder, input_dim, output_dim)

    def to_model_inputs(element):
        inputs = {"linguistic": element["linguistic"], "language": element["language"], "speaker": element["speaker"]}
        if frame_mask is None:
            return inputs, element["acoustic"]
        return inputs, element["acoustic"], element["mask"]

    dataset = dataset.map(
        _graph_function(to_model_inputs), num_parallel_calls=tf.data.AUTOTUNE, deterministic=bool(deterministic)
    )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(data_options)


def _balance(dataset, manifest, selected, seed):
    """Keep each utterance of language u with probability min_count / count_u: the kept stream has every selected
    language equally often (rejection sampling on an endless stream; seeded through `Dataset.random`)."""
    import tensorflow as tf

    counts = np.zeros(manifest.num_languages, np.float64)
    for entry in selected.values():
        counts[manifest.language_id(entry["language"])] += 1
    keep_probability = tf.constant(
        np.where(counts > 0, counts[counts > 0].min() / np.maximum(counts, 1), 0.0), tf.float64
    )
    draws = tf.data.Dataset.random(seed=seed).map(
        _graph_function(lambda value: tf.cast(value % (2**31), tf.float64) / 2.0**31)
    )
    paired = tf.data.Dataset.zip((dataset, draws))
    kept = paired.filter(_graph_function(lambda element, draw: draw < tf.gather(keep_probability, element["language"])))
    return kept.map(_graph_function(lambda element, draw: element))


def _chunk(dataset, chunk_frames, input_dim, output_dim):
    import tensorflow as tf

    def split(element):
        frames = tf.shape(element["linguistic"])[0]
        chunks = (frames + chunk_frames - 1) // chunk_frames
        padding = chunks * chunk_frames - frames

        def cut(values, dim):
            padded = tf.pad(values, [[0, padding], [0, 0]])
            return tf.reshape(padded, [chunks, chunk_frames, dim])

        return tf.data.Dataset.from_tensor_slices(
            {
                "linguistic": cut(element["linguistic"], input_dim),
                "acoustic": cut(element["acoustic"], output_dim),
                "mask": tf.reshape(tf.pad(element["mask"], [[0, padding]]), [chunks, chunk_frames]),
                "language": tf.fill([chunks], element["language"]),
                "speaker": tf.fill([chunks], element["speaker"]),
            }
        )

    return dataset.flat_map(_graph_function(split))


def _bucket(dataset, boundaries, batch_size, drop_remainder, input_dim, output_dim):
    import tensorflow as tf

    boundary_tensor = tf.constant(boundaries, tf.int64)
    input_dim, output_dim = tf.constant(input_dim, tf.int64), tf.constant(output_dim, tf.int64)

    def key(element):
        frames = tf.cast(tf.shape(element["linguistic"])[0], tf.int64)
        return tf.reduce_min(tf.where(boundary_tensor >= frames))

    def reduce(bucket, window):
        length = boundary_tensor[bucket]
        return window.padded_batch(
            batch_size,
            padded_shapes={
                "linguistic": tf.stack([length, input_dim]),
                "acoustic": tf.stack([length, output_dim]),
                "mask": tf.reshape(length, [1]),
                "language": tf.constant([], tf.int64),
                "speaker": tf.constant([], tf.int64),
            },
            drop_remainder=drop_remainder,
        )

    return dataset.group_by_window(_graph_function(key), _graph_function(reduce), window_size=batch_size)


def steps_per_epoch(
    path,
    split: str,
    batch_size: int,
    languages: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    chunk_frames: int | None = None,
) -> int:
    """Batches in one pass over the selection (ignoring per-bucket partial batches): for `fit(steps_per_epoch=)`
    with `repeat=True` or balanced sampling."""
    items = _selected_utterances(Manifest.load(path), split, languages, speakers).values()
    if chunk_frames:
        count = sum(math.ceil(entry["frames"] / chunk_frames) for entry in items)
    else:
        count = len(items)
    return max(1, math.ceil(count / batch_size))
