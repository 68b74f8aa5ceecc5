"""The adaptation drivers: `adapt` (a model and `tf.data` datasets in memory), `adapt_model_on_prepared` (a loaded
model and a prepared dataset, resumable in a working folder) and `adapt_resumably`, the resumable core of every
adaptation (`mlms adapt RUN` is `mlms_keras.training.adaptation.run`, `mlms adapt VOICE` is
`mlms_keras.training.adaptation.voice`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import load_dataset
from mlms_keras.training.adaptation.phases import (
    PHASE_BEST_NAME,
    Phase,
    PhaseSchedule,
    adaptation_phases,
    adaptation_weight_groups,
)
from mlms_keras.training.adaptation.speakers import (
    SpeakerDistance,
    add_language_and_speaker,
    closest_speaker,
    with_ids,
)
from mlms_keras.training.callbacks import AcousticMetricsCallback, HistoryFile, check_finite_weights
from mlms_keras.training.resume import backed_up_epochs, fast_forward
from mlms_keras.training.runs import (
    BACKUP_FOLDER,
    HISTORY_NAME,
)

__all__ = [
    "AdaptationOptions",
    "AdaptationResult",
    "adapt",
    "adapt_model_on_prepared",
    "adapt_resumably",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AdaptationOptions:
    """The settings of one adaptation (the options of `mlms adapt`).

    Attributes:
        variant: `"v1"`, `"v2"`, `"v3"` or `"v4"` (paper sec. 4.2; `mlms_keras.training.adaptation`).
        epochs_per_phase: an int, or one count per phase (`adaptation_phases`).
        batch_size: utterances per batch (`adapt_on_prepared`; `adapt` takes ready batches).
        learning_rate: Adam learning rate.
        seed: seeds the new language code, the new speaker layer and the shuffling (`adapt_on_prepared`).
        steps_per_epoch: batches per epoch from the repeated training stream; None: one pass per epoch.
        restore_best_per_phase: at the end of each phase, put back its best dev epoch (`PhaseSchedule`); needs
            dev data.
    """

    variant: str = "v3"
    epochs_per_phase: int | tuple[int, ...] = 10
    batch_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    steps_per_epoch: int | None = None
    restore_best_per_phase: bool = True


@dataclasses.dataclass
class AdaptationResult:
    """Result of `adapt`.

    Attributes:
        model: the adapted model (the same object that was passed in, grown by one language and one speaker
            when they were added).
        language_id, speaker_id: the adapted pair's ids in the model.
        variant: "v1".."v4".
        phases: the `Phase`s that ran.
        history: `History.history` of the single `fit` (per-epoch lists, including `adaptation_phase`).
        initial_speaker: the speaker whose layer initialised the new one (None: fresh initialisation).
        speaker_distance: the `SpeakerDistance` when the initial speaker was chosen as the closest.
    """

    model: keras.Model
    language_id: int
    speaker_id: int
    variant: str
    phases: list[Phase]
    history: dict
    initial_speaker: int | None = None
    speaker_distance: SpeakerDistance | None = None


def adapt(
    model: keras.Model,
    train_dataset,
    dev_dataset=None,
    options: AdaptationOptions = AdaptationOptions(),
    *,
    language: int | None = None,
    speaker: int | None = None,
    copy_speaker_from="closest",
    speaker_candidates: list[tuple[int, int]] | None = None,
    best_state_path=None,
    callbacks=(),
    verbose="auto",
) -> AdaptationResult:
    """Adapts an MLMS model to a new language and speaker with one of the paper's variants (sec. 4.2).

    Args:
        model: a trained model from `build_mlms_model` (changed in place).
        train_dataset: `tf.data.Dataset` of `({"linguistic", "language", "speaker"}, acoustic)` batches of the
            new speaker; the ids in it are replaced by the adapted pair's ids (`with_ids`).
        dev_dataset: optional dev batches of the same form (reported as `val_loss`, the dev MSE).
        options: `variant`, `epochs_per_phase`, `learning_rate` (Adam), `steps_per_epoch` (for an endless
            training dataset) and `restore_best_per_phase` (needs `dev_dataset`) are used here.
        language: id of an existing language to adapt instead of adding one (e.g. resuming); None adds a
            new, randomly initialised code.
        speaker: id of an existing speaker to adapt instead of adding one; None adds a new output layer.
        copy_speaker_from: how a new speaker's layer starts: `"closest"` (the existing speaker with the lowest
            MSE on `train_dataset`, see `closest_speaker`), an existing speaker id, or None (fresh).
        speaker_candidates: `(language, speaker)` pairs `closest_speaker` tries (default: all pairs).
        best_state_path: see `PhaseSchedule` (use it with a `BackupAndRestore` callback, in its folder).
        callbacks: extra Keras callbacks for the `fit`.
        verbose: passed to `fit`.

    Returns:
        An `AdaptationResult`.
    """
    if isinstance(dev_dataset, AdaptationOptions) or not isinstance(options, AdaptationOptions):
        raise TypeError("adapt(model, train_dataset, dev_dataset=None, options=AdaptationOptions(...)): pass options=")
    phases = adaptation_phases(options.variant, options.epochs_per_phase)
    if options.restore_best_per_phase and dev_dataset is None:
        raise ValueError(
            "restore_best_per_phase=True needs `dev_dataset`; pass one or set restore_best_per_phase=False"
        )
    distance = None
    initial_speaker = None
    if language is None or speaker is None:
        if speaker is None:
            if copy_speaker_from == "closest":
                distance = closest_speaker(model, train_dataset, candidates=speaker_candidates)
                initial_speaker = distance.speaker
                logger.info(
                    "new speaker starts from speaker %d (MSE %.4f with language %d)",
                    distance.speaker,
                    distance.mse,
                    distance.language,
                )
            elif copy_speaker_from is not None:
                initial_speaker = int(copy_speaker_from)
        towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
        language = towers.add_language() if language is None else int(language)
        speaker = speakers.add_speaker(copy_from=initial_speaker) if speaker is None else int(speaker)

    groups = adaptation_weight_groups(model, language, speaker)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss="mse")
    # Build the optimizer on everything any phase trains, while nothing is frozen yet (docs/architecture.md).
    model.optimizer.build(model.trainable_variables)
    schedule = PhaseSchedule(
        phases, groups, restore_best_per_phase=options.restore_best_per_phase, best_state_path=best_state_path
    )
    train = with_ids(train_dataset, language, speaker)
    dev = with_ids(dev_dataset, language, speaker) if dev_dataset is not None else None
    history = model.fit(
        train,
        validation_data=dev,
        epochs=schedule.total_epochs,
        callbacks=[keras.callbacks.TerminateOnNaN(), schedule, *callbacks],
        steps_per_epoch=options.steps_per_epoch,
        verbose=verbose,
    )
    check_finite_weights(model, "adaptation", history.history)
    return AdaptationResult(
        model=model,
        language_id=language,
        speaker_id=speaker,
        variant=options.variant,
        phases=phases,
        history=dict(history.history),
        initial_speaker=initial_speaker,
        speaker_distance=distance,
    )


def adapt_model_on_prepared(
    model: keras.Model,
    dataset_path,
    language: str,
    speaker: str,
    out_dir,
    options: AdaptationOptions = AdaptationOptions(),
    *,
    normalisation: Manifest,
    candidates: list[tuple[int, int]] | None = None,
    callbacks=(),
    verbose="auto",
) -> tuple[AdaptationResult, dict]:
    """Adapts a loaded acoustic model to one language and speaker of a prepared dataset, resumably, in `out_dir`.

    The new speaker's output layer starts from the closest of `candidates` (`closest_speaker` on the new speaker's
    training split); the new language code and speaker layer are added to `model` (in place) and trained with
    `options.variant`. `out_dir` gets `history.json` and, while unfinished, `backup/` (the `BackupAndRestore` state
    and the phase's best epoch): calling again with the same arguments and an equal starting model resumes.

    Args:
        model: an MLMS acoustic model whose inputs are the dataset's features (`manifest.input_dim`).
        dataset_path: prepared dataset with the pair's train and dev splits.
        language, speaker: the dataset's language code and speaker name to adapt to.
        out_dir: the working folder.
        options: the variant and training settings.
        normalisation: the `Manifest` whose input and output statistics the model was trained with.
        candidates: `(language id, speaker id)` pairs of `model` that `closest_speaker` tries (None: all).
        callbacks: extra Keras callbacks (run before the history file and the backup).
        verbose: passed to `fit`.

    Returns:
        `(result, history)`: the `AdaptationResult` (with `speaker_distance`) and the per-epoch history of all
        runs of this adaptation, killed ones included (`HistoryFile.as_history`).
    """
    out_dir = Path(out_dir)
    keras.utils.set_random_seed(options.seed)  # before the datasets: their shuffle seeds derive from the global seed

    def split(name, **settings):
        # One speaker's limited data: kept in memory rather than re-read from every shard each epoch.
        return load_dataset(
            dataset_path,
            name,
            options.batch_size,
            languages=[language],
            speakers=[speaker],
            normalisation=normalisation,
            cache="auto",
            **settings,
        )

    train_data = split("train", seed=options.seed, repeat=options.steps_per_epoch is not None)
    dev_data = split("dev", shuffle=False)
    metric_data = split("dev", shuffle=False, frame_mask="speech")

    def metric_callbacks(language_id, speaker_id):
        metrics = AcousticMetricsCallback(
            with_ids(metric_data, language_id, speaker_id), normalisation.output_mean, normalisation.output_std
        )
        return [metrics, *callbacks]

    return adapt_resumably(
        model,
        train_data,
        dev_data,
        lambda: split("train", shuffle=False),
        options,
        out_dir,
        candidates=candidates,
        make_callbacks=metric_callbacks,
        verbose=verbose,
    )


def adapt_resumably(
    model: keras.Model,
    train_data,
    dev_data,
    speaker_search_data,
    options: AdaptationOptions,
    out_dir: Path,
    *,
    candidates: list[tuple[int, int]] | None = None,
    make_callbacks=None,
    verbose="auto",
) -> tuple[AdaptationResult, dict]:
    """The resumable core of every adaptation (acoustic or duration model, run folder or voice), in `out_dir`.

    Seeds, finds the closest speaker on `speaker_search_data()` (a function, called after seeding), adds the new
    language and speaker to `model` (in place), and runs `adapt` with a history file and `BackupAndRestore` under
    `out_dir`, so that the same call after a kill resumes.

    Args:
        model: the model to grow and adapt.
        train_data, dev_data: the new pair's batches.
        speaker_search_data: a function returning unshuffled training batches for `closest_speaker`.
        options: the variant and training settings.
        out_dir: the working folder (`history.json`, `backup/`).
        candidates: `(language id, speaker id)` pairs `closest_speaker` tries (None: all).
        make_callbacks: `(language_id, speaker_id) -> list` of callbacks that run before the history file and
            the backup (None: none).
        verbose: passed to `fit`.

    Returns:
        `(result, history)`: the `AdaptationResult` (with `speaker_distance`) and the per-epoch history.
    """
    keras.utils.set_random_seed(options.seed)
    distance = closest_speaker(model, speaker_search_data(), candidates=candidates)
    language_id, speaker_id = add_language_and_speaker(model, copy_speaker_from=distance.speaker)
    extra = make_callbacks(language_id, speaker_id) if make_callbacks is not None else []
    history_file = HistoryFile(out_dir / HISTORY_NAME)
    # A resumed adaptation trains on the batches the uninterrupted one would have seen.
    train_data = fast_forward(train_data, backed_up_epochs(out_dir / BACKUP_FOLDER), options.steps_per_epoch)
    # The backup last, so that a backup only counts an epoch once the history has it.
    backup = keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_FOLDER), double_checkpoint=True)
    result = adapt(
        model,
        train_data,
        dev_data,
        options,
        language=language_id,
        speaker=speaker_id,
        best_state_path=out_dir / BACKUP_FOLDER / PHASE_BEST_NAME,
        callbacks=[*extra, history_file, backup],
        verbose=verbose,
    )
    result.initial_speaker, result.speaker_distance = distance.speaker, distance
    return result, history_file.as_history()
