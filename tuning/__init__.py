"""KerasTuner sweeps over the MLMS model's language-space dimension L (Li & Zen 2016, sec. 2 and 4.1).

Modules:

- `tuning.hypermodel`: `MLMSHyperModel`, a `keras_tuner.HyperModel` building `build_mlms_model` with
  L in [1, number of training languages], optionally tower width and learning rate.
- `tuning.tuner`: `make_tuner` / `run_sweep` (a resumable tuner with objective `val_loss`) and `trial_results`.
- `tuning.results`: the results table (markdown + JSON) and the plot of dev MSE against L.
- `tuning.export`: the best model as a zoo preset folder (`export_preset`, `load_preset`).
- `tuning.sweep`: `SweepOptions` and `tune_dataset` on a prepared dataset (the `mlms tune` verb).

Importing `tuning` loads nothing heavy: TensorFlow and KerasTuner are imported by the submodules that need them
(install them with `pip install ".[tuner]"`, the optional "tuner" extra). The names below resolve on first use.
"""

from mlms_keras.utils.lazy import lazy_exports

_EXPORTS = {
    "MLMSHyperModel": "tuning.hypermodel",
    "make_tuner": "tuning.tuner",
    "run_sweep": "tuning.tuner",
    "trial_results": "tuning.tuner",
    "TrialResult": "tuning.results",
    "write_results": "tuning.results",
    "read_results": "tuning.results",
    "export_preset": "tuning.export",
    "load_preset": "tuning.export",
    "SweepOptions": "tuning.sweep",
    "tune_dataset": "tuning.sweep",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
