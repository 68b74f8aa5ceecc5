"""Resuming: a job that resumes from an output folder first checks that it is asked to do the same work, and a
resumed `fit` sees the batches the uninterrupted run would have seen (`fast_forward`).

Every resumable job records the settings that shape its result when it starts (`mlms train` and `mlms adapt RUN` in
`training.json`'s `settings`, `mlms adapt VOICE` in `adaptation/request.json`, `mlms corpus build` in `build.json`,
`mlms tune` in `sweep.json`, `mlms reproduce` through the run folders it trains). A later call into the same folder
compares its own settings with the record and refuses to resume when any differs, naming each difference
(`settings: recorded X, now Y`; nested settings by their dotted path, e.g. `training.seed`), instead of silently
mixing two jobs.

Records made before a setting was recorded (older versions of the package) are compared on the settings they
have; each setting they lack is named in one warning (`not recorded by the version that started this job, not
checked`) and the job resumes. A setting the record has but the call does not is a difference.

Example:
    >>> check_settings("runs/a/training.json", {"epochs": 3}, {"epochs": 4}, what="a training run",
    ...                remedy="re-run that command")                      # doctest: +SKIP
    ValueError: runs/a/training.json: this folder holds a training run with other settings (epochs: recorded 3,
    now 4); re-run that command
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mlms_keras.utils.fileio import atomic_write_json

__all__ = [
    "backed_up_epochs",
    "check_settings",
    "claim_settings_file",
    "fast_forward",
    "json_view",
    "settings_differences",
]

logger = logging.getLogger(__name__)


def json_view(settings: dict) -> dict:
    """`settings` as it reads back from a JSON file (tuples become lists, numpy scalars numbers, paths strings)."""
    from mlms_keras.utils.jsonfile import json_default

    return json.loads(json.dumps(settings, default=json_default))


def _flatten(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def settings_differences(recorded: dict, current: dict) -> tuple[list[str], list[str]]:
    """Compares a job's recorded settings with the settings of the call that would resume it.

    Args:
        recorded: the settings in the job's record (JSON view).
        current: the settings of this call.

    Returns:
        `(differences, unrecorded)`: one `"name: recorded X, now Y"` line per setting that differs (nested dicts by
        dotted name, sorted), and the names of this call's settings the record lacks (an older record).
    """
    old, new = _flatten(json_view(recorded)), _flatten(json_view(current))
    # A whole section missing from an old record counts as unrecorded, not as one difference per entry.
    unrecorded = sorted(
        name for name in new if name not in old and not any(other.startswith(f"{name}.") for other in old)
    )
    differences = [
        f"{name}: recorded {old.get(name)!r}, now {new.get(name)!r}"
        for name in sorted(set(old) | set(new))
        if name not in unrecorded and old.get(name) != new.get(name)
    ]
    return differences, unrecorded


def check_settings(where, recorded: dict | None, current: dict, *, what: str, remedy: str) -> None:
    """Raises `ValueError` naming each difference when a job recorded with `recorded` may not resume as `current`.

    Args:
        where: the record's file (the message starts with it).
        recorded: the recorded settings; `None` when the record has none at all (made before settings were
            recorded): a warning, and the job resumes.
        current: this call's settings.
        what: what the folder holds, with its article ("a training run").
        remedy: what to do instead (the message ends with it).
    """
    if recorded is None:
        logger.warning("%s: %s made by an older version records no settings; resuming it unchecked", where, what)
        return
    differences, unrecorded = settings_differences(recorded, current)
    if differences:
        raise ValueError(f"{where}: this folder holds {what} with other settings ({'; '.join(differences)}); {remedy}")
    if unrecorded:
        logger.warning(
            "%s: %s not recorded by the version that started this job, not checked: %s",
            where,
            "setting" if len(unrecorded) == 1 else "settings",
            ", ".join(unrecorded),
        )


def claim_settings_file(path, settings: dict, *, what: str, remedy: str, overwrite: bool = False) -> dict:
    """Checks `settings` against the settings file `path` of an earlier call (`check_settings`), then writes it.

    Args:
        path: the JSON file holding nothing but the settings (`sweep.json`, `request.json`, `build.json`).
        settings: this call's settings.
        what, remedy: for the message (`check_settings`).
        overwrite: skip the check (the caller discards the earlier job).

    Returns:
        The settings as written (JSON view).

    Raises:
        ValueError: the file holds other settings, or is not a JSON object.
    """
    path = Path(path)
    settings = json_view(settings)
    if path.is_file() and not overwrite:
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); {remedy}") from error
        if not isinstance(recorded, dict):
            raise ValueError(f"{path}: not a settings record (a {type(recorded).__name__}); {remedy}")
        check_settings(path, recorded, settings, what=what, remedy=remedy)
    atomic_write_json(path, settings, indent=2, sort_keys=True)
    return settings


def backed_up_epochs(backup_folder) -> int:
    """Epochs a killed `fit` finished before its last `keras.callbacks.BackupAndRestore` backup (0: no backup).

    The same number Keras resumes from (`training_metadata.json`'s `epoch`).
    """
    metadata = Path(backup_folder) / "training_metadata.json"
    if not metadata.is_file():
        return 0
    try:
        return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{metadata}: unreadable backup ({error}); delete {Path(backup_folder)} to restart this run from epoch 0"
        ) from error


def fast_forward(dataset, epochs_done: int, steps_per_epoch: int | None):
    """The training stream of a resumed `fit`, positioned where the uninterrupted run would be after `epochs_done`.

    Keras restores weights, optimizer state and the epoch number, but a new process iterates a seeded,
    reshuffled `tf.data` stream from its first order again, so the resumed epochs would see other batches than
    an uninterrupted run. Here a finite dataset (a new iterator per epoch) gets `epochs_done` iterators that each
    produce one batch and are dropped: every shuffle stage then has drawn the seed of one more epoch (a shuffle
    after `flat_map`, as in chunked batches, draws its seed only when its first element is asked for, so creating
    the iterator is not enough); an endless one (one iterator, `steps_per_epoch` batches per epoch) skips
    `epochs_done * steps_per_epoch` batches (they are read). The resumed run then trains on exactly the batches of
    the uninterrupted one.

    Args:
        dataset: the training `tf.data.Dataset` given to `fit`.
        epochs_done: finished epochs (`backed_up_epochs`).
        steps_per_epoch: `fit`'s `steps_per_epoch` (None: one pass per epoch).

    Returns:
        The dataset to give to `fit`.
    """
    if epochs_done <= 0:
        return dataset
    if steps_per_epoch is not None:
        return dataset.skip(epochs_done * steps_per_epoch)
    for _ in range(epochs_done):
        next(iter(dataset), None)
    return dataset
