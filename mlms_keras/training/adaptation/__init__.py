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
the trainable weight groups at phase boundaries.

| module | what it holds |
|---|---|
| `phases` | `Phase`, `VARIANTS`, `adaptation_phases`, `adaptation_weight_groups`, `PhaseSchedule` |
| `speakers` | `add_language_and_speaker`, `closest_speaker` (`SpeakerDistance`), `with_ids` |
| `driver` | `AdaptationOptions`, `AdaptationResult`, `adapt`, `adapt_model_on_prepared`, `adapt_resumably` |
| `run` | `adapt_on_prepared` (a run folder, `mlms adapt RUN`) and the settings its resume must match |
| `duration` | `adapt_duration_on_prepared`, `duration_pair_metrics`: the duration model, the same way |
| `voice` | `adapt_voice` (`mlms adapt VOICE`): both models of a zoo voice, grown to a new language: a new voice |

`duration` and `voice` load on first use (`from mlms_keras.training.adaptation import adapt_voice` works): they
import `mlms_keras.training.duration`, which imports this package.

Example:
    >>> result = adapt(model, train, dev, AdaptationOptions(variant="v3", epochs_per_phase=10))  # doctest: +SKIP
    >>> result.language_id, result.speaker_id, [p.name for p in result.phases]  # doctest: +SKIP
    (6, 8, ['language_code', 'mean_tower'])
"""

from mlms_keras.training.adaptation.driver import (
    AdaptationOptions,
    AdaptationResult,
    adapt,
    adapt_model_on_prepared,
)
from mlms_keras.training.adaptation.phases import (
    LANGUAGE_CODE,
    MEAN_TOWER,
    PHASE_BEST_NAME,
    SPEAKER_LAYER,
    VARIANTS,
    Phase,
    PhaseSchedule,
    adaptation_phases,
    adaptation_weight_groups,
)
from mlms_keras.training.adaptation.run import adapt_on_prepared, adaptation_run_settings
from mlms_keras.training.adaptation.speakers import (
    SpeakerDistance,
    add_language_and_speaker,
    closest_speaker,
    with_ids,
)
from mlms_keras.utils.lazy import lazy_exports

#: Names of the modules that import `mlms_keras.training.duration` (which imports this package): loaded on first use.
_LAZY_HOMES = {
    "VoiceAdaptationResult": "mlms_keras.training.adaptation.voice",
    "adapt_voice": "mlms_keras.training.adaptation.voice",
    "check_adaptation_data": "mlms_keras.training.adaptation.voice",
    "adapt_duration_on_prepared": "mlms_keras.training.adaptation.duration",
    "duration_pair_metrics": "mlms_keras.training.adaptation.duration",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY_HOMES)

__all__ = [
    "LANGUAGE_CODE",
    "MEAN_TOWER",
    "PHASE_BEST_NAME",
    "SPEAKER_LAYER",
    "VARIANTS",
    "AdaptationOptions",
    "AdaptationResult",
    "Phase",
    "PhaseSchedule",
    "SpeakerDistance",
    "VoiceAdaptationResult",
    "adapt",
    "adapt_duration_on_prepared",
    "adapt_model_on_prepared",
    "adapt_on_prepared",
    "adapt_voice",
    "adaptation_phases",
    "adaptation_run_settings",
    "adaptation_weight_groups",
    "add_language_and_speaker",
    "check_adaptation_data",
    "closest_speaker",
    "duration_pair_metrics",
    "with_ids",
]
