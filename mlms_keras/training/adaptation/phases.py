"""The phases of the adaptation variants v1-v4 (Li & Zen 2016, sec. 4.2) and the callback that runs them in one `fit`.

A variant is a list of `Phase`s (`adaptation_phases`); each phase trains some weight groups
(`adaptation_weight_groups`: the new language's code, the mean tower, the new speaker's output layer) and freezes
everything else. `PhaseSchedule` switches the trainable groups at phase boundaries inside ONE `model.fit`, following
the freezing facts of docs/architecture.md: the optimizer is built on every weight that any phase trains before
`fit` starts (so that unfreezing later is not an "Unknown variable"), and the train function is rebuilt
(`make_train_function(force=True)`) after each switch, because Keras traces the trainable-variable list into it.

Freezing is per variable (`variable.trainable`), not per layer: a phase must train the new language's code but not
the other languages' codes, which live in the same layer.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np

from mlms_keras.utils.fileio import atomic_output

__all__ = [
    "LANGUAGE_CODE",
    "MEAN_TOWER",
    "PHASE_BEST_NAME",
    "SPEAKER_LAYER",
    "VARIANTS",
    "Phase",
    "PhaseSchedule",
    "adaptation_phases",
    "adaptation_weight_groups",
]

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

    groups: tuple[str, ...]
    epochs: int

    @property
    def name(self) -> str:
        """Readable phase name, e.g. `"language_code+mean_tower"` (the speaker layer is implied)."""
        return "+".join(group for group in self.groups if group != SPEAKER_LAYER)


def adaptation_phases(variant: str, epochs_per_phase) -> list[Phase]:
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


def adaptation_weight_groups(model: keras.Model, language: int, speaker: int) -> dict[str, list]:
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

    def __init__(
        self,
        phases: list[Phase],
        groups: dict[str, list],
        restore_best_per_phase: bool = False,
        monitor: str = "val_loss",
        best_state_path=None,
    ):
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
    def total_epochs(self) -> int:
        """Epochs over all phases: pass this as `fit(epochs=...)`."""
        return int(self._phase_ends[-1])

    def phase_of_epoch(self, epoch: int) -> int:
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
            # Unfreezing later needs optimizer slots for every weight a phase trains (docs/architecture.md).
            optimizer.build(self.model.trainable_variables)
        self._active_phase = None

    def _enter_phase(self, phase_index):
        trained = {id(v) for v in self._trained_variables(phase_index)}
        for variable, initially_trainable in self._initial_flags:
            variable.trainable = initially_trainable and id(variable) in trained
        frozen_but_wanted = [v.path for v in self._trained_variables(phase_index) if not v.trainable]
        if frozen_but_wanted:
            raise ValueError(
                f"Phase {self.phases[phase_index].name!r} trains variables that are fixed by construction: "
                f"{frozen_but_wanted}"
            )
        # Keras traces the trainable-variable list into the train function: rebuild it (docs/architecture.md).
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
        arrays = {f"weight_{i}": w for i, w in enumerate(self._best_weights)}
        # A file object: np.savez would append ".npz" to a path.
        with atomic_output(self.best_state_path) as temporary, open(temporary, "wb") as file:
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
