"""Adapting a trained MLMS model to a new language and speaker (Li & Zen 2016, sec. 4.2).

A new language gets a fresh, randomly initialised code vector lambda(u) (`ClusterAdaptiveTowers.add_language`)
and the new speaker gets its own RNN output layer (`SpeakerRNNOutput.add_speaker`), initialised as a copy of
the closest existing speaker (see `closest_speaker`). Training then follows one of the paper's variants:

- **v1**: update only the new language code;
- **v2**: update the new language code and the mean tower jointly;
- **v3**: start from v1, then update the mean tower alone;
- **v4**: start from v3, then update the new language code and the mean tower jointly.

"To adapt to the target speaker, we needed to update the RNN output layer" (sec. 4.2): the new speaker's
output layer trains in every phase of every variant. Nothing else moves: the basis towers, the other
languages' codes and the other speakers' output layers stay bit-identical.

Each variant is a list of `Phase`s run inside ONE `model.fit` by the `PhaseSchedule` callback, which switches
the trainable weight groups at phase boundaries. It follows the freezing facts of ARCHITECTURE.md: the
optimizer is built on every weight that any phase trains before `fit` starts (so that unfreezing later is
not an "Unknown variable"), and the train function is rebuilt (`make_train_function(force=True)`) after
each switch, because Keras traces the trainable-variable list into it.

Freezing is per variable (`variable.trainable`), not per layer: a phase must train the new language's code
but not the other languages' codes, which live in the same layer.

Example:
    >>> result = adapt(model, train, dev, variant="v3", epochs_per_phase=10)  # doctest: +SKIP
    >>> result.language_id, result.speaker_id, [p.name for p in result.phases]  # doctest: +SKIP
    (6, 8, ['language_code', 'mean_tower'])
"""

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

#: Weight groups a phase may train (besides the new speaker's output layer, which always trains).
LANGUAGE_CODE = "language_code"
MEAN_TOWER = "mean_tower"
SPEAKER_LAYER = "speaker_layer"

#: File in a run's backup folder holding the current phase's best epoch while the run is unfinished.
PHASE_BEST_NAME = "phase_best.npz"

#: Paper sec. 4.2: the language-side groups each phase of each variant updates, in order.
VARIANTS = {
    "v1": ((LANGUAGE_CODE,),),
    "v2": ((LANGUAGE_CODE, MEAN_TOWER),),
    "v3": ((LANGUAGE_CODE,), (MEAN_TOWER,)),
    "v4": ((LANGUAGE_CODE,), (MEAN_TOWER,), (LANGUAGE_CODE, MEAN_TOWER)),
}


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stretch of adaptation training with a fixed set of trainable weight groups.

    Attributes:
        groups: weight-group names trained in this phase (keys of `adaptation_weight_groups`).
        epochs: epochs the phase lasts (>= 1).
    """

    groups: tuple
    epochs: int

    @property
    def name(self):
        """Readable phase name, e.g. `"language_code+mean_tower"` (the speaker layer is implied)."""
        return "+".join(group for group in self.groups if group != SPEAKER_LAYER)


def adaptation_phases(variant, epochs_per_phase):
    """The phases of a paper variant.

    Args:
        variant: `"v1"`, `"v2"`, `"v3"` or `"v4"`.
        epochs_per_phase: an int (every phase gets that many epochs, so v3's first phase *is* v1 and v4's
            first two phases *are* v3, as the paper's "start from v1/v3" says), or a sequence with one
            count per phase.

    Returns:
        A list of `Phase`; every phase also trains the new speaker's output layer.
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(VARIANTS)}. Received: variant={variant!r}")
    groups = VARIANTS[variant]
    if isinstance(epochs_per_phase, (int, np.integer)):
        epochs = [int(epochs_per_phase)] * len(groups)
    else:
        epochs = [int(e) for e in epochs_per_phase]
        if len(epochs) != len(groups):
            raise ValueError(
                f"`epochs_per_phase` has {len(epochs)} entries but variant {variant} has {len(groups)} phases "
                f"({[' + '.join(g) for g in groups]}); give one count per phase or a single int"
            )
    if min(epochs) < 1:
        raise ValueError(f"`epochs_per_phase` must be >= 1 for every phase. Received: {epochs}")
    return [Phase(groups=phase_groups + (SPEAKER_LAYER,), epochs=count) for phase_groups, count in zip(groups, epochs)]


def adaptation_weight_groups(model, language, speaker):
    """The weight groups of an MLMS model as seen from one adapted (language, speaker) pair.

    Args:
        model: a model built by `mlms_keras.models.acoustic.build_mlms_model`.
        language: the adapted language's id.
        speaker: the adapted speaker's id.

    Returns:
        dict name -> list of variables, with disjoint groups covering every weight:
        `language_code` (the adapted language's (L,) code), `mean_tower`, `speaker_layer` (the adapted
        speaker's forward/recurrent/bias), and the groups that adaptation never trains: `basis_towers`,
        `other_language_codes`, `other_speaker_layers`.
    """
    towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
    if towers.language_codes is None:
        raise ValueError("This model has no language space (language_space_dim=0, an SLSS model); it cannot be adapted")
    if not 0 <= language < towers.num_languages:
        raise ValueError(f"`language` must be in [0, {towers.num_languages}). Received: language={language}")
    if not 0 <= speaker < speakers.num_speakers:
        raise ValueError(f"`speaker` must be in [0, {speakers.num_speakers}). Received: speaker={speaker}")
    codes = towers.language_codes.codes
    return {
        LANGUAGE_CODE: [codes[language]],
        MEAN_TOWER: list(towers.mean_tower.weights),
        SPEAKER_LAYER: list(speakers.speaker_variables(speaker)),
        "basis_towers": list(towers.basis_towers.weights),
        "other_language_codes": [code for u, code in enumerate(codes) if u != language],
        "other_speaker_layers": [
            w for s in range(speakers.num_speakers) if s != speaker for w in speakers.speaker_variables(s)
        ],
    }


class PhaseSchedule(keras.callbacks.Callback):
    """Keras callback: trains different weight groups in consecutive epoch ranges of one `fit`.

    Epochs `[0, phases[0].epochs)` train `phases[0].groups`, the next `phases[1].epochs` epochs train
    `phases[1].groups`, and so on; every other variable of the model is frozen. The phase of an epoch is
    computed from the epoch number alone, so a run resumed by `BackupAndRestore` re-enters the right phase.

    The optimizer must hold slots for every variable any phase trains: the callback builds it on all
    trainable variables when `fit` starts, unless it is already built (then build it yourself right after
    `compile`, before freezing anything: `model.optimizer.build(model.trainable_variables)`).

    Args:
        phases: list of `Phase`.
        groups: dict group name -> list of variables (from `adaptation_weight_groups`).
        restore_best_per_phase: at the end of each phase, put back the phase's trained weights from the
            epoch with the lowest `monitor` (so v3's second phase starts from the best v1 point, the way the
            paper trains each stage to convergence on the dev set). Needs `monitor` in the epoch logs.
        monitor: log key used by `restore_best_per_phase` (lower is better).
        best_state_path: optional `.npz` file where the current phase's best epoch (its weights, value and
            epoch) is kept on disk, so a run killed in the middle of a phase and resumed by `BackupAndRestore`
            still restores the phase's best epoch, not merely the best since the resume. Put it in the
            `BackupAndRestore` folder: it is only needed while the run is unfinished.

    Attributes:
        phase_log: list of `(epoch, phase_index)` for every epoch run.
    """

    def __init__(self, phases, groups, restore_best_per_phase=False, monitor="val_loss", best_state_path=None):
        super().__init__()
        if not phases:
            raise ValueError("`phases` is empty; give at least one Phase")
        for phase in phases:
            unknown = set(phase.groups) - set(groups)
            if unknown:
                raise ValueError(
                    f"Phase {phase.name!r} names unknown weight groups {sorted(unknown)}; known: {sorted(groups)}"
                )
        self.phases = list(phases)
        self.groups = groups
        self.restore_best_per_phase = restore_best_per_phase
        self.monitor = monitor
        self.best_state_path = Path(best_state_path) if best_state_path is not None else None
        self.phase_log = []
        self._phase_ends = np.cumsum([phase.epochs for phase in self.phases])
        self._active_phase = None
        self._initial_flags = None
        self._best_value = None
        self._best_weights = None

    @property
    def total_epochs(self):
        """Epochs over all phases: pass this as `fit(epochs=...)`."""
        return int(self._phase_ends[-1])

    def phase_of_epoch(self, epoch):
        """Index of the phase that epoch `epoch` (0-based) belongs to."""
        if epoch >= self.total_epochs:
            raise ValueError(f"Epoch {epoch} is past the last phase (phases cover {self.total_epochs} epochs)")
        return int(np.searchsorted(self._phase_ends, epoch, side="right"))

    def _trained_variables(self, phase_index):
        return [v for group in self.phases[phase_index].groups for v in self.groups[group]]

    def on_train_begin(self, logs=None):
        # Remember every flag so that the model leaves `fit` as it came in (a later full fine-tune works).
        self._initial_flags = [(v, v.trainable) for v in self.model.weights]
        optimizer = self.model.optimizer
        if optimizer is None:
            raise ValueError("PhaseSchedule needs a compiled model; call model.compile(...) before fit()")
        if not optimizer.built:
            # Unfreezing later needs optimizer slots for every weight a phase trains (ARCHITECTURE.md).
            optimizer.build(self.model.trainable_variables)
        self._active_phase = None

    def _enter_phase(self, phase_index):
        trained = {id(v) for v in self._trained_variables(phase_index)}
        for variable, initially_trainable in self._initial_flags:
            variable.trainable = initially_trainable and id(variable) in trained
        frozen_but_wanted = [v.path for v in self._trained_variables(phase_index) if not v.trainable]
        if frozen_but_wanted:
            raise ValueError(
                f"Phase {self.phases[phase_index].name!r} trains variables that are fixed by construction: {frozen_but_wanted}"
            )
        # Keras traces the trainable-variable list into the train function: rebuild it (ARCHITECTURE.md).
        self.model.make_train_function(force=True)
        self._active_phase = phase_index
        self._best_value, self._best_weights = self._load_best_state(phase_index)
        logger.info("adaptation phase %d (%s) starts", phase_index + 1, self.phases[phase_index].name)

    def _load_best_state(self, phase_index):
        """The phase's best `(value, weights)` saved by an earlier, killed run of it; `(None, None)` if none."""
        if not self.restore_best_per_phase or self.best_state_path is None or not self.best_state_path.is_file():
            return None, None
        with np.load(self.best_state_path) as saved:
            if int(saved["phase"]) != phase_index:
                return None, None  # a record of an earlier phase: this phase starts afresh
            weights = [saved[f"weight_{i}"] for i in range(int(saved["count"]))]
            value, epoch = float(saved["value"]), int(saved["epoch"])
        shapes = [tuple(v.shape) for v in self._trained_variables(phase_index)]
        if [w.shape for w in weights] != shapes:
            raise ValueError(
                f"{self.best_state_path}: saved best weights do not fit this model's phase "
                f"{self.phases[phase_index].name!r}; delete the file or the whole backup folder"
            )
        logger.info(
            "phase %s resumes with its best epoch so far (epoch %d, %s %.5f)",
            self.phases[phase_index].name,
            epoch + 1,
            self.monitor,
            value,
        )
        return value, weights

    def _save_best_state(self, epoch):
        from mlms_keras.utils.fileio import atomic_output

        arrays = {f"weight_{i}": w for i, w in enumerate(self._best_weights)}
        with atomic_output(self.best_state_path) as temporary:
            with open(temporary, "wb") as file:  # a file object: np.savez would append ".npz" to a path
                np.savez(
                    file,
                    phase=self._active_phase,
                    epoch=epoch,
                    value=self._best_value,
                    count=len(self._best_weights),
                    **arrays,
                )

    def on_epoch_begin(self, epoch, logs=None):
        phase_index = self.phase_of_epoch(epoch)
        if phase_index != self._active_phase:
            self._enter_phase(phase_index)
        self.phase_log.append((epoch, phase_index))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["adaptation_phase"] = float(self._active_phase + 1)
        if not self.restore_best_per_phase:
            return
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(
                f"restore_best_per_phase needs {self.monitor!r} in the epoch logs (pass validation_data to fit); "
                f"logs have {sorted(logs)}"
            )
        trained = self._trained_variables(self._active_phase)
        if self._best_value is None or value < self._best_value:
            self._best_value = float(value)
            self._best_weights = [keras.ops.convert_to_numpy(v).copy() for v in trained]
            if self.best_state_path is not None:
                self._save_best_state(epoch)
        if epoch + 1 == self._phase_ends[self._active_phase]:
            for variable, best in zip(trained, self._best_weights):
                variable.assign(best)
            logger.info(
                "phase %s: kept its best epoch (%s %.5f)",
                self.phases[self._active_phase].name,
                self.monitor,
                self._best_value,
            )

    def on_train_end(self, logs=None):
        for variable, initially_trainable in self._initial_flags or ():
            variable.trainable = initially_trainable


def with_ids(dataset, language, speaker):
    """Maps a `tf.data` dataset of `(inputs, targets[, mask])` so every sequence has this language and speaker id.

    Adaptation data is one language and one speaker, but a prepared dataset numbers them in its own tables;
    this puts the adapted model's ids in (e.g. the id `add_language` returned).

    Args:
        dataset: batched elements `({"linguistic", "language" (batch,), "speaker" (batch,)}, acoustic, ...)`.
        language, speaker: the model's ids.
    """

    def replace(inputs, *rest):
        inputs = dict(inputs)
        inputs["language"] = tf.fill(tf.shape(inputs["language"]), tf.cast(language, inputs["language"].dtype))
        inputs["speaker"] = tf.fill(tf.shape(inputs["speaker"]), tf.cast(speaker, inputs["speaker"].dtype))
        return (inputs, *rest)

    return dataset.map(replace)


@dataclasses.dataclass
class SpeakerDistance:
    """Result of `closest_speaker`.

    Attributes:
        speaker: id of the existing speaker whose output layer predicts the new data best.
        language: the language id used with it (the pair with the lowest MSE).
        mse: that pair's masked MSE (normalised units, pooled over frames and the 49 dimensions).
        table: dict `(language, speaker) -> mse` for every candidate pair.
    """

    speaker: int
    language: int
    mse: float
    table: dict


def _frame_mask(linguistic):
    # The model's own definition of padding: an all-zero linguistic row (its Masking layer).
    return np.any(np.asarray(linguistic) != 0.0, axis=-1)


def closest_speaker(model, dataset, candidates=None, max_batches=None):
    """Finds the existing speaker whose output layer best fits a new speaker's data.

    "Closest" is concrete: for each candidate (language u, speaker s) of the trained model, run the model
    with language u and speaker s on the new data and pool the squared error over all non-padded frames
    and all 49 outputs; the closest speaker is the s of the pair with the lowest mean. Its output layer is
    then the starting point of the new speaker's layer (`SpeakerRNNOutput.add_speaker(copy_from=s)`). Use
    the new speaker's *training* data here, so that the dev set stays untouched for model selection.

    Args:
        model: a trained MLMS model.
        dataset: iterable of `(inputs, targets[, mask])` batches of the new speaker (ids are overridden).
        candidates: list of `(language, speaker)` pairs to try; default: every language with every speaker.
            A good choice is each speaker with its own training language (what `mlms adapt` passes).
        max_batches: use only the first `max_batches` batches.

    Returns:
        A `SpeakerDistance`.
    """
    towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
    if candidates is None:
        candidates = [(u, s) for u in range(towers.num_languages) for s in range(speakers.num_speakers)]
    candidates = [(int(u), int(s)) for u, s in candidates]
    if not candidates:
        raise ValueError("`candidates` is empty; give at least one (language, speaker) pair")
    squared_error = dict.fromkeys(candidates, 0.0)
    values = 0
    for batch_index, element in enumerate(dataset):
        if max_batches is not None and batch_index >= max_batches:
            break
        inputs, targets = element[0], np.asarray(element[1], dtype=np.float64)
        keep = _frame_mask(inputs["linguistic"])
        values += int(keep.sum()) * targets.shape[-1]
        batch_size = keep.shape[0]
        for language, speaker in candidates:
            trial = dict(inputs)
            trial["language"] = np.full((batch_size,), language, "int32")
            trial["speaker"] = np.full((batch_size,), speaker, "int32")
            predicted = np.asarray(model.predict_on_batch(trial), dtype=np.float64)
            squared_error[(language, speaker)] += float(np.sum((predicted[keep] - targets[keep]) ** 2))
    if values == 0:
        raise ValueError("closest_speaker: the dataset has no non-padded frames; check the adaptation data")
    table = {pair: total / values for pair, total in squared_error.items()}
    (language, speaker), mse = min(table.items(), key=lambda item: item[1])
    return SpeakerDistance(speaker=speaker, language=language, mse=mse, table=table)


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
    phases: list
    history: dict
    initial_speaker: object = None
    speaker_distance: object = None


def add_language_and_speaker(model, copy_speaker_from=None, initial_code=None):
    """Grows a trained MLMS model by one language code (random by default) and one speaker output layer.

    Args:
        model: model from `build_mlms_model`.
        copy_speaker_from: existing speaker id whose output layer initialises the new one; None: fresh
            initialisation (Glorot forward matrix, zero recurrence and bias).
        initial_code: optional (L,) start value of the new code; random (normal, stddev 1/sqrt(L)) otherwise.

    Returns:
        `(language_id, speaker_id)` of the new pair. Recompile the model before training it.
    """
    language_id = model.get_layer("towers").add_language(initial_code=initial_code)
    speaker_id = model.get_layer("acoustic").add_speaker(copy_from=copy_speaker_from)
    return language_id, speaker_id


def adapt(
    model,
    train_dataset,
    dev_dataset=None,
    variant="v3",
    epochs_per_phase=10,
    language=None,
    speaker=None,
    copy_speaker_from="closest",
    speaker_candidates=None,
    optimizer=None,
    restore_best_per_phase=True,
    best_state_path=None,
    callbacks=(),
    steps_per_epoch=None,
    verbose="auto",
):
    """Adapts an MLMS model to a new language and speaker with one of the paper's variants (sec. 4.2).

    Args:
        model: a trained model from `build_mlms_model` (changed in place).
        train_dataset: `tf.data.Dataset` of `({"linguistic", "language", "speaker"}, acoustic)` batches of the
            new speaker; the ids in it are replaced by the adapted pair's ids (`with_ids`).
        dev_dataset: optional dev batches of the same form (reported as `val_loss`, the dev MSE).
        variant: "v1", "v2", "v3" or "v4".
        epochs_per_phase: int or one count per phase (see `adaptation_phases`).
        language: id of an existing language to adapt instead of adding one (e.g. resuming); None adds a
            new, randomly initialised code.
        speaker: id of an existing speaker to adapt instead of adding one; None adds a new output layer.
        copy_speaker_from: how a new speaker's layer starts: `"closest"` (the existing speaker with the lowest
            MSE on `train_dataset`, see `closest_speaker`), an existing speaker id, or None (fresh).
        speaker_candidates: `(language, speaker)` pairs `closest_speaker` tries (default: all pairs).
        optimizer: a Keras optimizer (default Adam, learning rate 1e-3).
        restore_best_per_phase: see `PhaseSchedule`; needs `dev_dataset`.
        best_state_path: see `PhaseSchedule` (use it with a `BackupAndRestore` callback, in its folder).
        callbacks: extra Keras callbacks for the `fit`.
        steps_per_epoch: batches per epoch for an endless training dataset; None: one pass.
        verbose: passed to `fit`.

    Returns:
        An `AdaptationResult`.
    """
    phases = adaptation_phases(variant, epochs_per_phase)
    if restore_best_per_phase and dev_dataset is None:
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
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="mse")
    # Build the optimizer on everything any phase trains, while nothing is frozen yet (ARCHITECTURE.md).
    model.optimizer.build(model.trainable_variables)
    schedule = PhaseSchedule(
        phases, groups, restore_best_per_phase=restore_best_per_phase, best_state_path=best_state_path
    )
    train = with_ids(train_dataset, language, speaker)
    dev = with_ids(dev_dataset, language, speaker) if dev_dataset is not None else None
    history = model.fit(
        train,
        validation_data=dev,
        epochs=schedule.total_epochs,
        callbacks=[schedule, *callbacks],
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )
    return AdaptationResult(
        model=model,
        language_id=language,
        speaker_id=speaker,
        variant=variant,
        phases=phases,
        history=dict(history.history),
        initial_speaker=initial_speaker,
        speaker_distance=distance,
    )


# Prepared datasets and the `mlms adapt` verb ----------------------------------------------------------------


def adapt_on_prepared(
    model_path,
    dataset_path,
    language,
    speaker,
    variant,
    out_dir,
    epochs_per_phase=10,
    batch_size=8,
    learning_rate=1e-3,
    seed=0,
    steps_per_epoch=None,
    command=None,
    verbose="auto",
):
    """Adapts a model trained by `mlms train` to one language and speaker of a prepared dataset (`mlms adapt`).

    The new speaker's output layer starts from the closest trained speaker (`closest_speaker`, each trained
    speaker tried with its own training language, on the new speaker's training split). Inputs are normalised
    with the base model's dataset statistics when that dataset is still where the base run recorded it.
    `out_dir` gets `model.keras` and `training.json` in the format of `mlms train` (so `load_run`,
    `mlms synth-utterance` and further adaptation read it), with the language and speaker appended to its tables,
    plus `history.json` and TensorBoard `logs/`. A killed run resumes from its last finished epoch when called
    again with the same arguments (`backup/`).

    Args:
        model_path: a run folder from `mlms train` (or its `model.keras`).
        dataset_path: prepared dataset holding the new language and speaker (train and dev splits).
        language: the new language's code, e.g. "pl".
        speaker: the new speaker's name, e.g. "pl-female".
        variant: "v1".."v4".
        out_dir: output folder.
        epochs_per_phase, batch_size, learning_rate, seed: training settings (Adam).
        steps_per_epoch: batches per epoch from the repeated training stream; None: one pass per epoch.
        command: command line recorded in `training.json`.
        verbose: passed to `fit`.

    Returns:
        An `AdaptationResult`.
    """
    from mlms_keras.data import Manifest, load_dataset
    from mlms_keras.evaluation.metrics import AcousticMetricsCallback
    from mlms_keras.training.fit import (
        BACKUP_FOLDER,
        FINAL_MODEL_NAME,
        HISTORY_NAME,
        LOG_FOLDER,
        RUN_INFO_NAME,
        HistoryFile,
        load_run,
        save_model_atomically,
        write_json_atomically,
    )

    out_dir = Path(out_dir)
    if (out_dir / RUN_INFO_NAME).is_file():
        import json

        if json.loads((out_dir / RUN_INFO_NAME).read_text(encoding="utf-8")).get("complete"):
            raise FileExistsError(
                f"{out_dir}: this adaptation is already complete; choose a new --out folder or delete it"
            )
    model, info = load_run(model_path)
    if not info.get("languages") or not info.get("speakers"):
        raise ValueError(
            f"{model_path}: no language/speaker tables in its training.json; adapt a run made by `mlms train`"
        )
    if info.get("model_type") == "slss":
        raise ValueError(f"{model_path}: an SLSS baseline has no language space to adapt; give an MLMS run")
    if language in info["languages"]:
        raise ValueError(
            f"{model_path} already knows language {language!r}; adaptation adds a new language "
            f"(known: {info['languages']})"
        )
    if speaker in info["speakers"]:
        raise ValueError(f"{model_path} already has speaker {speaker!r}; choose a new speaker")
    manifest = Manifest.load(dataset_path)
    manifest.language_id(language)
    manifest.speaker_id(speaker)  # both raise naming the dataset's tables
    if manifest.speakers[speaker]["language"] != language:
        raise ValueError(
            f"speaker {speaker!r} speaks {manifest.speakers[speaker]['language']!r} in {dataset_path}, not {language!r}"
        )
    base_dataset = info.get("dataset")
    normalisation = None
    if base_dataset and Path(base_dataset).resolve() != manifest.folder.resolve():
        if Path(base_dataset).is_dir():
            normalisation = base_dataset
        else:
            logger.warning("base dataset %s is gone; normalising with %s's own statistics", base_dataset, dataset_path)
    stats = Manifest.load(normalisation) if normalisation else manifest

    def split(name, **options):
        # One speaker's limited data: kept in memory rather than re-read from every shard each epoch.
        return load_dataset(
            dataset_path,
            name,
            batch_size,
            languages=[language],
            speakers=[speaker],
            normalisation=normalisation,
            cache="auto",
            **options,
        )

    train_data = split("train", seed=seed, repeat=steps_per_epoch is not None)
    dev_data = split("dev", shuffle=False)
    metric_data = split("dev", shuffle=False, frame_mask="speech")
    speaker_languages = info.get("speaker_languages") or [None] * len(info["speakers"])
    candidates = [
        (info["languages"].index(code), s) for s, code in enumerate(speaker_languages) if code in info["languages"]
    ]
    keras.utils.set_random_seed(seed)
    distance = closest_speaker(model, split("train", shuffle=False), candidates=candidates or None)
    language_id, speaker_id = add_language_and_speaker(model, copy_speaker_from=distance.speaker)
    logger.info("%s starts from %s's output layer", speaker, info["speakers"][distance.speaker])
    history_file = HistoryFile(out_dir / HISTORY_NAME)
    callbacks = [
        AcousticMetricsCallback(with_ids(metric_data, language_id, speaker_id), stats.output_mean, stats.output_std),
        keras.callbacks.TensorBoard(log_dir=str(out_dir / LOG_FOLDER), write_graph=False),
        history_file,
        # Last, so a backup only counts an epoch once the history has it.
        keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_FOLDER), double_checkpoint=True),
    ]
    result = adapt(
        model,
        train_data,
        dev_data,
        variant=variant,
        epochs_per_phase=epochs_per_phase,
        language=language_id,
        speaker=speaker_id,
        optimizer=keras.optimizers.Adam(learning_rate),
        restore_best_per_phase=True,
        best_state_path=out_dir / BACKUP_FOLDER / PHASE_BEST_NAME,
        callbacks=callbacks,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )
    result.initial_speaker, result.speaker_distance = distance.speaker, distance
    save_model_atomically(model, out_dir / FINAL_MODEL_NAME)
    history = history_file.as_history()
    distance = result.speaker_distance
    run_info = {
        **{key: value for key, value in info.items() if key not in ("history", "best_epoch_logs", "complete")},
        "languages": info["languages"] + [language],
        "speakers": info["speakers"] + [speaker],
        "speaker_languages": list(speaker_languages) + [language],
        "model_file": FINAL_MODEL_NAME,
        "adaptation": {
            "base_model": str(Path(model_path).absolute()),
            "dataset": str(manifest.folder.absolute()),
            "normalisation": str(stats.folder.absolute()),
            "variant": variant,
            "phases": [{"groups": list(p.groups), "epochs": p.epochs} for p in result.phases],
            "language_id": result.language_id,
            "speaker_id": result.speaker_id,
            "initial_speaker": info["speakers"][result.initial_speaker] if result.initial_speaker is not None else None,
            "initial_speaker_mse": distance.mse if distance else None,
            "speaker_mse_table": {
                f"{info['languages'][u]}/{info['speakers'][s]}": v for (u, s), v in distance.table.items()
            }
            if distance
            else None,
            "final_dev_mse": history["val_loss"][-1] if history.get("val_loss") else None,
            "training": {
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "steps_per_epoch": steps_per_epoch,
            },
        },
        "history": history,
        "command": command,
        "complete": True,
    }
    write_json_atomically(out_dir / RUN_INFO_NAME, run_info)
    return result


def _run_adapt(args):
    import sys

    try:
        result = adapt_on_prepared(
            args.model,
            args.dataset,
            args.language,
            args.speaker,
            args.variant,
            args.out,
            epochs_per_phase=args.epochs_per_phase,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            steps_per_epoch=args.steps_per_epoch,
            command=" ".join(["mlms"] + sys.argv[1:]),
            verbose=2 if args.quiet else "auto",
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"mlms adapt: {error}", file=sys.stderr)
        return 2
    dev = result.history.get("val_loss")
    print(
        f"{args.out}/model.keras: {args.variant} adapted to {args.language}/{args.speaker}"
        + (f", dev MSE {dev[-1]:.4f}" if dev else "")
    )
    return 0


def add_cli_parser(subparsers):
    """Registers `mlms adapt`."""
    import argparse

    parser = subparsers.add_parser(
        "adapt",
        help="adapt a trained MLMS model to a new language and speaker (paper sec. 4.2, variants v1-v4)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Add a language code (random init) and a speaker output layer (copied from the closest trained speaker)\n"
            "to a model from `mlms train`, then train per variant; the new speaker's layer trains in every phase:\n"
            "  v1: the code only\n  v2: the code and the mean tower jointly\n"
            "  v3: v1, then the mean tower alone\n  v4: v3, then the code and the mean tower jointly\n"
            "Each phase lasts --epochs-per-phase epochs and keeps its best dev epoch. Re-running the same command\n"
            "after a kill resumes.\n\n"
            "example:\n  mlms adapt runs/mlms data/prepared --language pl --speaker pl-female --variant v3 --out runs/pl-v3"
        ),
    )
    parser.add_argument("model", help="run folder from `mlms train` (or its model.keras)")
    parser.add_argument("dataset", help="prepared dataset with the new language's train and dev splits")
    parser.add_argument("--language", required=True, help="new language code, e.g. pl")
    parser.add_argument("--speaker", required=True, help="new speaker name, e.g. pl-female")
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--epochs-per-phase", type=int, default=10, help="epochs per phase (default 10)")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch from the repeated training data (default: one pass per epoch)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(handler=_run_adapt)
