"""The paper's experiments on a prepared teacher corpus: Figure 2 and Figure 3 analogues (`mlms reproduce`).

**Figure 2** (Li & Zen 2016, sec. 4.1): a single-language single-speaker (SLSS) baseline for every training
language-speaker pair, against one MLMS model per language-code strategy (`random`, `one_hot` = "1-hot (init)",
`one_hot_fixed` = "1-hot (fixed)"), all with L = U basis towers as in the paper (6 towers, 6 languages). Scored on
each language's female speaker, as the paper does ("evaluations were only conducted on the female speaker"), and
also on the other trained speakers (the two male voices), in columns of their own.

**Figure 3** (sec. 4.2): for each adaptation language (pl, pt-br) with its limited data, an SLSS model trained
from scratch against the MLMS (`random` codes, the paper's choice) adapted with variants v1-v4 (`adaptation`).

Every system is scored on the dev split: dev MSE (normalised units, pooled over non-padded frames and the 49
outputs, the quantity of the paper's figures), and, in vocoder units on speech frames (silence removed, Merlin's
way), MCD (dB), F0 RMSE (Hz) and V/UV error (%). Outputs in `out_dir`: `results.json`, `results.md` and
`figure2.png`, `figure3.png`; each trained system keeps its run folder under `runs/`, so an interrupted reproduction
resumes (finished runs are reused, an unfinished one continues from its last epoch). A finished run is reused only
when its recorded settings (`training.json`'s `settings`: scale, seed, dataset fingerprint, tables, options) are the
ones this call would train it with; otherwise the call is refused, naming each difference, rather than labelling an
old run with the new scale.

The tables, the figures and the check of the paper's claims are in `mlms_keras.evaluation.paper`.

Scales (`SCALES`): `smoke` (a tiny model and a handful of batches: checks the whole pipeline in minutes),
`small` (a model between the "tiny" and "small" presets, 3 passes over each base model's own data, sized for the
small teacher corpus on 2 CPU cores) and `small-steps` (the same model, a fixed 160 batches per base model). None
is the paper's training budget; see docs/reproduce.md for what they show.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from mlms_keras.evaluation.paper import (
    CODE_STRATEGY_LABELS,
    VARIANT_NAMES,
    check_claims,
    plot_figures,
    results_markdown,
)
from mlms_keras.training.runs import check_run_settings, is_complete, load_run, remap_ids, select_tables
from mlms_keras.utils.fileio import atomic_write_json, atomic_write_text
from mlms_keras.utils.provenance import provenance

__all__ = ["CODE_STRATEGIES", "SCALES", "Scale", "evaluate_run", "reproduce"]

logger = logging.getLogger(__name__)

#: The language-code strategies of Figure 2 (paper sec. 4.1; `MLMSConfig.code_init`).
CODE_STRATEGIES = tuple(CODE_STRATEGY_LABELS)


@dataclasses.dataclass(frozen=True)
class Scale:
    """Training budget of one reproduction scale.

    Attributes:
        preset: `MLMSConfig` preset; `config_overrides` changes its sizes.
        config_overrides: other `MLMSConfig` fields (never `language_space_dim`: L = U here).
        epochs: maximum epochs of every base model (SLSS and MLMS).
        steps_per_epoch: batches per epoch of the base models (None: one pass over their data).
        batch_size: utterances per batch.
        learning_rate: Adam learning rate of every run.
        patience: early-stopping patience of the base models (None: never).
        adapt_epochs_per_phase: epochs per adaptation phase (one pass over the adaptation data each).
        scratch_epochs: maximum epochs of the from-scratch baselines on the adaptation data (one pass each).
    """

    preset: str
    config_overrides: dict
    epochs: int
    steps_per_epoch: object
    batch_size: int
    learning_rate: float
    patience: object
    adapt_epochs_per_phase: int
    scratch_epochs: int


_SMALL_MODEL = {"relu_units": 64, "lstm_layers": 2, "lstm_cells": 64, "lstm_projection": 32}

SCALES = {
    "smoke": Scale(
        "tiny",
        {},
        epochs=2,
        steps_per_epoch=2,
        batch_size=4,
        learning_rate=3e-3,
        patience=None,
        adapt_epochs_per_phase=1,
        scratch_epochs=2,
    ),
    # The documented full run on the small teacher corpus (Table 1 / 50): 65 min on 2 CPU cores
    # (docs/reproduce.md): every base model makes 3 passes over its own training data, so an MLMS model sees
    # each speaker's utterances as often as that speaker's SLSS baseline does (8 SLSS + 3 MLMS base models,
    # 2 scratch models and 8 adaptations over the 18 utterances of each adaptation speaker).
    "small": Scale(
        "tiny",
        _SMALL_MODEL,
        epochs=3,
        steps_per_epoch=None,
        batch_size=8,
        learning_rate=2e-3,
        patience=None,
        adapt_epochs_per_phase=6,
        scratch_epochs=18,
    ),
    # The first small-scale design: the same 8 x 20 batches for every base model (about 40 min on 2 cores).
    # An MLMS model then sees each speaker 1/8 as often as its SLSS baseline; docs/reproduce.md compares both.
    "small-steps": Scale(
        "tiny",
        _SMALL_MODEL,
        epochs=8,
        steps_per_epoch=20,
        batch_size=8,
        learning_rate=2e-3,
        patience=3,
        adapt_epochs_per_phase=6,
        scratch_epochs=18,
    ),
}


def _evaluation_speaker(manifest, language):
    """The speaker a language is scored on: its first female speaker (the paper's choice), else its first."""
    speakers = sorted((s for s in manifest.speakers.values() if s["language"] == language), key=lambda s: s["id"])
    if not speakers:
        raise ValueError(f"{manifest.folder}: language {language!r} has no speaker")
    female = [s for s in speakers if s.get("gender") == "female"]
    return (female or speakers)[0]["name"]


def evaluate_run(run_dir, dataset_path, language: str, speaker: str, batch_size: int = 8) -> dict[str, float]:
    """Dev-set scores of one trained system on one language-speaker pair.

    Args:
        run_dir: a run folder from `mlms train` / `mlms adapt`.
        dataset_path: prepared dataset with the pair's dev split.
        language, speaker: the pair (they must be in the run's tables unless it is an SLSS run).
        batch_size: dev batch size.

    Returns:
        dict: `dev_mse` (normalised units, pooled over non-padded frames and outputs), `mcd_db`, `f0_rmse_hz`,
        `vuv_error_percent` (vocoder units, speech frames).
    """
    # Deferred (TensorFlow, the feature layout): `mlms reproduce --help` reads `SCALES` without them.
    from mlms_keras.data.manifest import Manifest
    from mlms_keras.data.pipeline import load_dataset
    from mlms_keras.training.callbacks import AcousticMetricsCallback, PerLanguageDevMSE

    model, info = load_run(run_dir)
    manifest = Manifest.load(dataset_path)
    normalisation = (info.get("adaptation") or {}).get("normalisation") or info.get("dataset")
    if normalisation and Path(normalisation).resolve() == manifest.folder.resolve():
        normalisation = None
    stats = Manifest.load(normalisation) if normalisation else manifest
    data = load_dataset(
        dataset_path,
        "dev",
        batch_size,
        languages=[language],
        speakers=[speaker],
        shuffle=False,
        frame_mask="speech",
        normalisation=normalisation,
    )
    if info.get("model_type") == "slss":
        languages, speakers = [language], [speaker]
    else:
        languages, speakers = info["languages"], info["speakers"]
    data = remap_ids(data, manifest, languages, speakers)
    mse = PerLanguageDevMSE(data, languages)
    mse.set_model(model)
    acoustic = AcousticMetricsCallback(data, stats.output_mean, stats.output_std)
    acoustic.set_model(model)
    scores = acoustic.compute()
    return {
        "dev_mse": mse.compute()[language],
        "mcd_db": scores["val_mcd_db"],
        "f0_rmse_hz": scores["val_f0_rmse_hz"],
        "vuv_error_percent": scores["val_vuv_error_percent"],
    }


def reproduce(
    dataset_path,
    out_dir,
    scale: str | Scale = "smoke",
    *,
    training_languages: list[str] | None = None,
    adaptation_languages: list[str] | None = None,
    seed: int = 0,
    verbose=0,
) -> dict:
    """Runs the Figure 2 and Figure 3 experiments and writes the table and plots (see the module docstring).

    Args:
        dataset_path: prepared teacher corpus (`mlms corpus build` + `mlms prepare`), with training-role and
            adaptation-role languages.
        out_dir: output folder (`runs/`, `results.json`, `results.md`, `figure2.png`, `figure3.png`).
        scale: a key of `SCALES`, or a `Scale` of your own (the training budget of every run).
        training_languages: codes for Figure 2 and the base MLMS (default: the dataset's training-role ones).
        adaptation_languages: codes for Figure 3 (default: the dataset's adaptation-role ones).
        seed: seed of every run.
        verbose: `fit` verbosity of the runs.

    Returns:
        The results dict also written to `results.json`.
    """
    # Deferred (TensorFlow, the feature layout): `mlms reproduce --help` reads `SCALES` without them.
    from mlms_keras.data.manifest import Manifest
    from mlms_keras.training.adaptation import AdaptationOptions, adapt_on_prepared, adaptation_run_settings
    from mlms_keras.training.fit import TrainingOptions, prepared_run_settings, train_on_prepared

    if isinstance(scale, Scale):
        settings, scale = scale, "custom"
    elif scale in SCALES:
        settings = SCALES[scale]
    else:
        raise ValueError(f"scale must be one of {sorted(SCALES)} or a Scale. Received: {scale!r}")
    manifest = Manifest.load(dataset_path)
    out_dir = Path(out_dir)
    runs = out_dir / "runs"
    table = sorted(manifest.data["languages"], key=lambda entry: entry["id"])
    if training_languages is None:
        training_languages = [e["code"] for e in table if e.get("role") == "training"]
    if adaptation_languages is None:
        adaptation_languages = [e["code"] for e in table if e.get("role") == "adaptation"]
    language_codes, speaker_names = select_tables(manifest, training_languages)
    if not language_codes:
        raise ValueError(f"{dataset_path}: no training languages; pass training_languages")
    model = dict(preset=settings.preset, config_overrides=settings.config_overrides)
    base = TrainingOptions(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        early_stopping_patience=settings.patience,
        seed=seed,
        steps_per_epoch=settings.steps_per_epoch,
    )
    scratch = dataclasses.replace(
        base, epochs=settings.scratch_epochs, early_stopping_patience=None, steps_per_epoch=None
    )
    timings, reused = {}, []
    started_all = time.monotonic()

    def run(name, work, settings):
        """Runs `work(run_dir)`, or reuses the finished run when it was made with `settings()` (else refuses)."""
        run_dir = runs / name
        if is_complete(run_dir):
            check_run_settings(run_dir, settings())
            logger.info("%s: done before with the same settings, reused", name)
            reused.append(name)
            return run_dir
        started = time.monotonic()
        work(run_dir)
        timings[name] = round(time.monotonic() - started, 1)
        logger.info("%s: %.0f s", name, timings[name])
        return run_dir

    systems = {}  # (figure, system label) -> run folder
    # Figure 2: SLSS per training language-speaker pair.
    for speaker in speaker_names:
        language = manifest.speakers[speaker]["language"]
        slss = dict(model, model_type="slss", languages=[language], speakers=[speaker])
        systems[(2, f"SLSS/{speaker}")] = run(
            f"slss-{speaker}",
            lambda d, choice=slss: train_on_prepared(dataset_path, d, base, verbose=verbose, **choice),
            lambda choice=slss: prepared_run_settings(dataset_path, base, **choice),
        )
    # Figure 2: MLMS per language-code strategy, L = U (paper sec. 4.1).
    for strategy in CODE_STRATEGIES:
        mlms = dict(model, languages=language_codes, code_init=strategy, language_space_dim=len(language_codes))
        systems[(2, CODE_STRATEGY_LABELS[strategy])] = run(
            f"mlms-{strategy}",
            lambda d, choice=mlms: train_on_prepared(dataset_path, d, base, verbose=verbose, **choice),
            lambda choice=mlms: prepared_run_settings(dataset_path, base, **choice),
        )
    base_model = systems[(2, CODE_STRATEGY_LABELS["random"])]
    # Figure 3: scratch vs v1-v4 per adaptation language.
    for language in adaptation_languages:
        speaker = _evaluation_speaker(manifest, language)
        slss = dict(model, model_type="slss", languages=[language], speakers=[speaker])
        systems[(3, f"scratch/{language}")] = run(
            f"scratch-{language}",
            lambda d, choice=slss: train_on_prepared(dataset_path, d, scratch, verbose=verbose, **choice),
            lambda choice=slss: prepared_run_settings(dataset_path, scratch, **choice),
        )
        for variant in VARIANT_NAMES:
            options = AdaptationOptions(
                variant=variant,
                epochs_per_phase=settings.adapt_epochs_per_phase,
                batch_size=settings.batch_size,
                learning_rate=settings.learning_rate,
                seed=seed,
            )
            systems[(3, f"{variant}/{language}")] = run(
                f"adapt-{language}-{variant}",
                lambda d, lang=language, spk=speaker, o=options: adapt_on_prepared(
                    base_model, dataset_path, lang, spk, d, o, verbose=verbose
                ),
                lambda lang=language, spk=speaker, o=options: adaptation_run_settings(
                    base_model, manifest, lang, spk, o
                ),
            )

    rows = []
    for language in language_codes:
        evaluation_speaker = _evaluation_speaker(manifest, language)
        # The paper scores the female speaker of each language; the other trained speakers (the teacher corpus's
        # two male voices) get their own columns, labelled with their gender.
        for speaker in [evaluation_speaker] + [
            s for s in speaker_names if s != evaluation_speaker and manifest.speakers[s]["language"] == language
        ]:
            gender = manifest.speakers[speaker].get("gender") or speaker
            pair = language if speaker == evaluation_speaker else f"{language} ({gender})"
            for system, run_dir in [("SLSS", systems[(2, f"SLSS/{speaker}")])] + [
                (label, systems[(2, label)]) for label in CODE_STRATEGY_LABELS.values()
            ]:
                rows.append(
                    {
                        "figure": 2,
                        "system": system,
                        "pair": pair,
                        "language": language,
                        "speaker": speaker,
                        **evaluate_run(run_dir, dataset_path, language, speaker),
                    }
                )
    for language in adaptation_languages:
        speaker = _evaluation_speaker(manifest, language)
        for system in ("scratch",) + VARIANT_NAMES:
            rows.append(
                {
                    "figure": 3,
                    "system": system,
                    "pair": language,
                    "language": language,
                    "speaker": speaker,
                    **evaluate_run(systems[(3, f"{system}/{language}")], dataset_path, language, speaker),
                }
            )
    results = {
        "dataset": str(Path(dataset_path).absolute()),
        "scale": scale,
        "settings": dataclasses.asdict(settings),
        "training_languages": language_codes,
        "adaptation_languages": list(adaptation_languages),
        "rows": rows,
        "claims": check_claims(rows),
        "run_seconds": timings,
        "reused_runs": reused,
        "wall_seconds": round(time.monotonic() - started_all, 1),
        **provenance(),
    }
    atomic_write_json(out_dir / "results.json", results, sort_keys=True)
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    plot_figures(rows, out_dir)
    return results
