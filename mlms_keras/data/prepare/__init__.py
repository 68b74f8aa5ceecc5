"""`mlms prepare`: WORLD analysis + frame-level linguistic features of a corpus into TFRecord shards.

For every utterance with an alignment (HTS `.lab` or `.TextGrid`) it runs WORLD analysis and builds frame-level
linguistic features, aligned frame-exactly, and writes both into GZIP-compressed TFRecord shards (one record per
utterance, all features unnormalised; the schema is `mlms_keras.data.records`) with a manifest, `dataset.json`
(`mlms_keras.data.manifest`). `mlms_keras.data.load_dataset` reads them.

The package, in the order of the work:

- `alignment`: the frame alignment rule, `fit_durations_to_frames` (the alignment is fitted to WORLD's frames);
- `extraction`: one utterance, `extract_utterance` -> `PreparedUtterance`, and the training moments;
- `tables`: the language and speaker tables, the train/dev splits and the speakers' F0 ranges;
- `shards`: the shard plan, extraction in worker processes, the single shard writer and its resume sidecars;
- `driver`: `prepare_dataset` (`PrepareOptions` in, `PrepareReport` out) and the manifest.

Example:
>>> from mlms_keras.data.prepare import PrepareOptions, prepare_dataset
>>> prepare_dataset("data/teacher", "data/prepared", workers=2, f0_method="dio",
...                 options=PrepareOptions(max_frame_mismatch=5))                      # doctest: +SKIP
"""

from mlms_keras.data.prepare.alignment import (
    DEFAULT_MAX_FRAME_MISMATCH,
    FrameCountMismatchError,
    fit_durations_to_frames,
)
from mlms_keras.data.prepare.driver import F0_METHODS, PrepareOptions, PrepareReport, prepare_dataset
from mlms_keras.data.prepare.extraction import PreparedUtterance, extract_utterance
from mlms_keras.data.prepare.shards import DEFAULT_UTTERANCES_PER_SHARD, SHARD_SUFFIX, ShardTask
from mlms_keras.data.prepare.tables import F0_ESTIMATE_FILES, default_dev_count

__all__ = [
    "DEFAULT_MAX_FRAME_MISMATCH",
    "DEFAULT_UTTERANCES_PER_SHARD",
    "F0_ESTIMATE_FILES",
    "F0_METHODS",
    "SHARD_SUFFIX",
    "FrameCountMismatchError",
    "PrepareOptions",
    "PrepareReport",
    "PreparedUtterance",
    "ShardTask",
    "default_dev_count",
    "extract_utterance",
    "fit_durations_to_frames",
    "prepare_dataset",
]
