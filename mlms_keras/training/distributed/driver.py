"""Distributed training on a prepared dataset: what `mlms train --distributed` runs.

The model, the language and speaker tables and the run folder are those of `mlms train`
(`mlms_keras.training.runs`), so `mlms adapt`, `load_run` and `mlms synth-utterance` take a distributed run as
they take a single-process one. Worker `i` of `n` reads the training shard files `i::n`; the chief evaluates the
dev split at every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import load_dataset, steps_per_epoch
from mlms_keras.training.distributed.checkpoints import TRAINING_LOG
from mlms_keras.training.distributed.cluster import join_cluster
from mlms_keras.training.distributed.loops import DistributedOptions, DistributedTrainingResult, train_distributed
from mlms_keras.training.runs import (
    BEST_MODEL_NAME,
    FINAL_MODEL_NAME,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    RUN_INFO_NAME,
    check_run_settings,
    new_run_record,
    remap_ids,
    select_tables,
    write_run_record,
)
from mlms_keras.utils.provenance import provenance

__all__ = ["PreparedRunOptions", "prepared_dataset_fn", "train_distributed_on_prepared"]


@dataclasses.dataclass(frozen=True)
class PreparedRunOptions:
    """What `train_distributed_on_prepared` trains, and on which batches (the options of `mlms train`).

    Attributes:
        preset: model size, `"tiny"`, `"small"` or `"paper"` (`MLMSConfig.preset`).
        languages: language codes to train on (default: the dataset's training-role languages).
        speakers: speaker names (default: every speaker of those languages).
        code_init: language code strategy, `"random"`, `"one_hot"` or `"one_hot_fixed"` (paper sec. 4.1).
        language_space_dim: L, basis towers (default: the preset's).
        epochs: passes over the training data when `DistributedOptions.steps` is None (sync: each step takes one
            batch per worker; async: one batch).
        steps_per_epoch: steps in one epoch when `DistributedOptions.steps` is None (default: one pass over the
            data). There is no early stopping: the run does its steps and keeps the best-on-dev model.
        batch_size: utterances (or chunks) per batch and worker.
        chunk_frames: truncated-BPTT chunk length in frames (None: whole utterances).
    """

    preset: str = "small"
    languages: Sequence[str] | None = None
    speakers: Sequence[str] | None = None
    code_init: str = "random"
    language_space_dim: int | None = None
    epochs: int = 30
    steps_per_epoch: int | None = None
    batch_size: int = 16
    chunk_frames: int | None = None


def prepared_dataset_fn(path, split: str = "train", batch_size: int = 16, **load_options) -> Callable:
    """A `dataset_fn` for `train_distributed` over a prepared dataset (`mlms prepare`).

    Worker `i` of `n` reads shard files `i::n` through `mlms_keras.data.load_dataset(path, split, batch_size,
    shard=(i, n), repeat=True, **load_options)`, so the workers read disjoint shares. A dataset needs at least as
    many shard files in `split` as there are workers.

    Args:
        path: prepared dataset folder.
        split: split to train on.
        batch_size: utterances (or truncated-BPTT chunks) per batch and worker.
        **load_options: any other `load_dataset` option (`seed`, `chunk_frames`, `languages`, ...).
    """

    def dataset_fn(num_shards, shard_index):
        return load_dataset(path, split, batch_size, shard=(shard_index, num_shards), repeat=True, **load_options)

    return dataset_fn


def train_distributed_on_prepared(
    dataset_path,
    out_dir,
    options: DistributedOptions | None = None,
    run: PreparedRunOptions | None = None,
    tf_config: str | dict | None = None,
    command: str | None = None,
) -> DistributedTrainingResult | None:
    """`mlms train --distributed`: an MLMS model trained on a prepared dataset by the cluster in `TF_CONFIG`.

    `out_dir` gets the run folder of `mlms train`: `model.keras` (best on dev), `best.keras` and `training.json`
    (`mlms_keras.training.runs`), plus the distributed job's `training_log.json` and checkpoints.

    Where the files must be: in sync mode every worker needs `dataset.json` and its own shard files; in async mode
    the chief needs `dataset.json` and every worker needs the shard files, at the same path (the chief builds the
    input pipelines that run on the workers). Only the chief writes `out_dir`.

    Args:
        dataset_path: prepared dataset folder (`mlms prepare`).
        out_dir: run folder.
        options: mode, steps, learning rate, checkpoints, seed, ... (`DistributedOptions`; None:
            `DistributedOptions(seed=0)`, as `mlms train`). `seed` also seeds the data shuffling.
        run: model size, tables, epochs and batches (`PreparedRunOptions`; None: the defaults).
        tf_config: `TF_CONFIG` (JSON string or dict); None reads the environment.
        command: the command line recorded in `training.json` (default: this process's).

    Returns:
        A `DistributedTrainingResult` on training processes, None on async `ps` / `worker` processes.
    """
    options = options or DistributedOptions(seed=0)
    run = run or PreparedRunOptions()
    task = join_cluster(tf_config, options.mode)
    if task is None:  # an async ps or worker: it has served until the chief finished
        return None

    # Keras is imported here, not at the top, so that importing this package stays free of TensorFlow; no
    # TensorFlow object may be made before train_distributed sets up the strategy.
    from mlms_keras.models.acoustic import MLMSConfig

    manifest = Manifest.load(dataset_path)
    language_codes, speaker_names = select_tables(manifest, run.languages, run.speakers)
    overrides = {"code_init": run.code_init}
    if run.language_space_dim is not None:
        overrides["language_space_dim"] = int(run.language_space_dim)
    config = MLMSConfig.preset(
        run.preset,
        input_dim=manifest.input_dim,
        num_languages=len(language_codes),
        num_speakers=len(speaker_names),
        **overrides,
    )
    steps = options.steps
    if steps is None and run.steps_per_epoch is not None:
        steps = run.epochs * run.steps_per_epoch
    elif steps is None:
        batches = steps_per_epoch(
            dataset_path, "train", run.batch_size, language_codes, speaker_names, run.chunk_frames
        )
        steps = run.epochs * math.ceil(batches / (task.num_trainers("sync") if options.mode == "sync" else 1))
    options = dataclasses.replace(options, steps=steps)

    def selection(split, **load_options):
        data = load_dataset(
            dataset_path, split, run.batch_size, languages=language_codes, speakers=speaker_names, **load_options
        )
        return remap_ids(data, manifest, language_codes, speaker_names)

    def dataset_fn(num_shards, shard_index):
        return selection(
            "train", seed=options.seed, chunk_frames=run.chunk_frames, shard=(shard_index, num_shards), repeat=True
        )

    def dev_dataset_fn():
        return selection("dev", shuffle=False)

    has_dev = any(entry["split"] == "dev" for entry in manifest.utterances.values())
    # What a resume must match (the cluster's size may change); checked and recorded by the chief before training.
    settings = {
        "config": config.to_dict(),
        "dataset": str(Path(dataset_path).absolute()),
        "dataset_fingerprint": manifest.fingerprint,
        "languages": language_codes,
        "speakers": speaker_names,
        "distributed_mode": options.mode,
        "steps": steps,
        "learning_rate": options.learning_rate,
        "seed": options.seed,
        "batch_size": run.batch_size,
        "chunk_frames": run.chunk_frames,
    }
    if task.is_chief:
        check_run_settings(out_dir, settings)
        if not (Path(out_dir) / RUN_INFO_NAME).is_file():
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            write_run_record(
                out_dir, {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, **provenance(command),
                          "complete": False, "settings": settings}
            )  # fmt: skip
    result = train_distributed(
        dataset_fn,
        out_dir,
        options,
        model_config=config,
        dev_dataset_fn=dev_dataset_fn if has_dev else None,
        tf_config=tf_config,
    )
    if task.is_chief:
        _zero_untrained_language_rows(out_dir, manifest.layout, language_codes)
        record = new_run_record(
            result.model,
            command,
            complete=True,
            dataset=str(Path(dataset_path).absolute()),
            model_type="mlms",
            preset=run.preset,
            languages=language_codes,
            speakers=speaker_names,
            speaker_languages=[manifest.speakers[name]["language"] for name in speaker_names],
            training={
                "batch_size": run.batch_size,
                "learning_rate": options.learning_rate,
                "seed": options.seed,
                "chunk_frames": run.chunk_frames,
                "steps": steps,
            },
            distributed={
                "mode": options.mode,
                "num_workers": task.num_trainers(options.mode),
                "seconds": result.seconds,
                "log": TRAINING_LOG,
            },
            best_val_loss=min((mse for _, mse in result.dev_mse), default=None),
            model_file=FINAL_MODEL_NAME,
            settings=settings,
        )
        write_run_record(out_dir, record)
    return result


def _zero_untrained_language_rows(out_dir, layout, language_codes) -> None:
    """Zeroes the input rows of the layout's languages without training data in the run's `best.keras` and
    `model.keras` (`mlms_keras.models.growth.zero_untrained_language_inputs`).

    `train_distributed` builds its model inside the strategy and has no hook to zero them at build. The rows never
    change in training (their inputs are always zero, and so are their gradient and their Adam update), so zeroing
    them in the finished files gives the very files a zeroing at build would have given.
    """
    import keras

    from mlms_keras.models.growth import zero_untrained_language_inputs
    from mlms_keras.utils.fileio import save_model_atomically

    for name in (BEST_MODEL_NAME, FINAL_MODEL_NAME):
        path = Path(out_dir) / name
        if path.is_file():
            model = keras.models.load_model(path)
            zero_untrained_language_inputs(model, layout, language_codes)
            save_model_atomically(model, path)
