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
resumes (finished runs are reused, an unfinished one continues from its last epoch).

Scales (`SCALES`): `smoke` (a tiny model and a handful of batches: checks the whole pipeline in minutes),
`small` (a model between the "tiny" and "small" presets, 3 passes over each base model's own data, sized for the
small teacher corpus on 2 CPU cores) and `small-steps` (the same model, a fixed 160 batches per base model). None
is the paper's training budget; see docs/reproduce.md for what they show.
"""

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from mlms_keras.utils.fileio import atomic_output, atomic_write_text

logger = logging.getLogger(__name__)

CODE_STRATEGIES = ("random", "one_hot", "one_hot_fixed")
CODE_STRATEGY_LABELS = {"random": "MLMS rand", "one_hot": "MLMS 1-hot (init)", "one_hot_fixed": "MLMS 1-hot (fixed)"}
VARIANT_NAMES = ("v1", "v2", "v3", "v4")


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


def _is_complete(run_dir):
    info = Path(run_dir) / "training.json"
    return info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("complete", False)


def _evaluation_speaker(manifest, language):
    """The speaker a language is scored on: its first female speaker (the paper's choice), else its first."""
    speakers = sorted((s for s in manifest.speakers.values() if s["language"] == language), key=lambda s: s["id"])
    if not speakers:
        raise ValueError(f"{manifest.folder}: language {language!r} has no speaker")
    female = [s for s in speakers if s.get("gender") == "female"]
    return (female or speakers)[0]["name"]


def evaluate_run(run_dir, dataset_path, language, speaker, batch_size=8):
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
    from mlms_keras.data import Manifest, load_dataset
    from mlms_keras.evaluation.metrics import AcousticMetricsCallback
    from mlms_keras.training.fit import PerLanguageDevMSE, load_run, remap_ids

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
    dataset_path, out_dir, scale="smoke", training_languages=None, adaptation_languages=None, seed=0, verbose=0
):
    """Runs the Figure 2 and Figure 3 experiments and writes the table and plots (see the module docstring).

    Args:
        dataset_path: prepared teacher corpus (`mlms corpus build` + `mlms prepare`), with training-role and
            adaptation-role languages.
        out_dir: output folder (`runs/`, `results.json`, `results.md`, `figure2.png`, `figure3.png`).
        scale: a key of `SCALES`, or a `Scale` of your own.
        training_languages: codes for Figure 2 and the base MLMS (default: the dataset's training-role ones).
        adaptation_languages: codes for Figure 3 (default: the dataset's adaptation-role ones).
        seed: seed of every run.
        verbose: `fit` verbosity of the runs.

    Returns:
        The results dict also written to `results.json`.
    """
    from mlms_keras.data import Manifest
    from mlms_keras.training.adaptation import adapt_on_prepared
    from mlms_keras.training.fit import select_tables, train_on_prepared

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
    common = dict(
        preset=settings.preset,
        config_overrides=settings.config_overrides,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=seed,
        verbose=verbose,
    )
    timings, reused = {}, []
    started_all = time.monotonic()

    def run(name, work):
        run_dir = runs / name
        if _is_complete(run_dir):
            logger.info("%s: done before, reused", name)
            reused.append(name)
            return run_dir
        started = time.monotonic()
        work(run_dir)
        timings[name] = round(time.monotonic() - started, 1)
        logger.info("%s: %.0f s", name, timings[name])
        return run_dir

    base = dict(
        epochs=settings.epochs,
        steps_per_epoch=settings.steps_per_epoch,
        early_stopping_patience=settings.patience,
        **common,
    )
    systems = {}  # (figure, system label) -> run folder
    # Figure 2: SLSS per training language-speaker pair.
    for speaker in speaker_names:
        language = manifest.speakers[speaker]["language"]
        systems[(2, f"SLSS/{speaker}")] = run(
            f"slss-{speaker}",
            lambda d, lang=language, spk=speaker: train_on_prepared(
                dataset_path, d, model_type="slss", languages=[lang], speakers=[spk], **base
            ),
        )
    # Figure 2: MLMS per language-code strategy, L = U (paper sec. 4.1).
    for strategy in CODE_STRATEGIES:
        systems[(2, CODE_STRATEGY_LABELS[strategy])] = run(
            f"mlms-{strategy}",
            lambda d, c=strategy: train_on_prepared(
                dataset_path, d, languages=language_codes, code_init=c, language_space_dim=len(language_codes), **base
            ),
        )
    base_model = systems[(2, CODE_STRATEGY_LABELS["random"])]
    # Figure 3: scratch vs v1-v4 per adaptation language.
    for language in adaptation_languages:
        speaker = _evaluation_speaker(manifest, language)
        systems[(3, f"scratch/{language}")] = run(
            f"scratch-{language}",
            lambda d, lang=language, spk=speaker: train_on_prepared(
                dataset_path,
                d,
                model_type="slss",
                languages=[lang],
                speakers=[spk],
                epochs=settings.scratch_epochs,
                early_stopping_patience=None,
                **common,
            ),
        )
        for variant in VARIANT_NAMES:
            systems[(3, f"{variant}/{language}")] = run(
                f"adapt-{language}-{variant}",
                lambda d, lang=language, spk=speaker, v=variant: adapt_on_prepared(
                    base_model,
                    dataset_path,
                    lang,
                    spk,
                    v,
                    d,
                    epochs_per_phase=settings.adapt_epochs_per_phase,
                    batch_size=settings.batch_size,
                    learning_rate=settings.learning_rate,
                    seed=seed,
                    verbose=verbose,
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
        "command": " ".join(["mlms"] + sys.argv[1:]) if sys.argv else None,
    }
    from mlms_keras.training.fit import write_json_atomically

    write_json_atomically(out_dir / "results.json", results)
    atomic_write_text(out_dir / "results.md", results_markdown(results))
    plot_figures(rows, out_dir)
    return results


def _mse(rows, figure, system, pair):
    for row in rows:
        if (row["figure"], row["system"], row["pair"]) == (figure, system, pair):
            return row["dev_mse"]
    return None


def check_claims(rows):
    """Checks the paper's four claims against the dev MSEs of `rows`, per column (`pair`: a language, scored on its
    female speaker, or "language (gender)" for another trained speaker of it).

    Returns:
        dict claim -> {"holds_for": [pairs], "fails_for": [pairs], "detail": {pair: numbers}}:
        - `mlms_close_to_slss`: MLMS rand within 10 % (relative) of the SLSS baseline's dev MSE (paper: "slightly
          worse objective scores", Fig. 2);
        - `random_init_best`: rand has the lowest dev MSE of the three code strategies (Fig. 2);
        - `v2_v3_better_than_scratch`: both v2 and v3 below scratch (Fig. 3);
        - `v1_most_constrained`: v1 has the highest dev MSE of v1-v4 (Fig. 3).
    """
    claims = {
        name: {"holds_for": [], "fails_for": [], "detail": {}}
        for name in ("mlms_close_to_slss", "random_init_best", "v2_v3_better_than_scratch", "v1_most_constrained")
    }

    def record(name, language, holds, detail):
        claims[name]["holds_for" if holds else "fails_for"].append(language)
        claims[name]["detail"][language] = detail

    for language in sorted({r["pair"] for r in rows if r["figure"] == 2}):
        slss, rand = _mse(rows, 2, "SLSS", language), _mse(rows, 2, "MLMS rand", language)
        record("mlms_close_to_slss", language, rand <= 1.10 * slss, {"slss": slss, "mlms_rand": rand})
        strategies = {label: _mse(rows, 2, label, language) for label in CODE_STRATEGY_LABELS.values()}
        record("random_init_best", language, min(strategies, key=strategies.get) == "MLMS rand", strategies)
    for language in sorted({r["pair"] for r in rows if r["figure"] == 3}):
        values = {system: _mse(rows, 3, system, language) for system in ("scratch",) + VARIANT_NAMES}
        record(
            "v2_v3_better_than_scratch",
            language,
            values["v2"] < values["scratch"] and values["v3"] < values["scratch"],
            values,
        )
        record("v1_most_constrained", language, max(VARIANT_NAMES, key=values.get) == "v1", values)
    return claims


def results_markdown(results):
    """The results as markdown: per-figure dev MSE tables, then every metric of every system and language."""
    rows = results["rows"]
    lines = [f"# Li & Zen (2016) Figures 2 and 3 on the teacher corpus (scale `{results['scale']}`)", ""]
    for figure, title in (
        (2, "Figure 2: dev MSE, training languages (female speaker; other speakers labelled)"),
        (3, "Figure 3: dev MSE, adaptation languages with limited data"),
    ):
        chosen = [r for r in rows if r["figure"] == figure]
        if not chosen:
            continue
        systems = list(dict.fromkeys(r["system"] for r in chosen))
        languages = list(dict.fromkeys(r["pair"] for r in chosen))
        lines += [f"## {title}", "", "| language | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
        for language in languages:
            values = [_mse(rows, figure, system, language) for system in systems]
            best = min(v for v in values if v is not None)
            cells = [f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in values]
            lines.append(f"| {language} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## All metrics (dev split; MCD, F0 RMSE and V/UV on speech frames)",
        "",
        "| figure | system | language | speaker | dev MSE | MCD (dB) | F0 RMSE (Hz) | V/UV (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['figure']} | {r['system']} | {r['language']} | {r['speaker']} | {r['dev_mse']:.4f} | "
            f"{r['mcd_db']:.2f} | {r['f0_rmse_hz']:.1f} | {r['vuv_error_percent']:.1f} |"
        )
    lines += ["", "## The paper's claims on these numbers", ""]
    for name, claim in results["claims"].items():
        lines.append(f"- `{name}`: holds for {claim['holds_for'] or 'none'}; fails for {claim['fails_for'] or 'none'}")
    lines.append("")
    return "\n".join(lines)


def plot_figures(rows, out_dir):
    """Writes `figure2.png` and `figure3.png`: grouped bars of dev MSE per language and system, like the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for figure, name, title in (
        (2, "figure2.png", "Fig. 2 analogue: SLSS vs MLMS code strategies"),
        (3, "figure3.png", "Fig. 3 analogue: new languages, limited data"),
    ):
        chosen = [r for r in rows if r["figure"] == figure]
        if not chosen:
            continue
        systems = list(dict.fromkeys(r["system"] for r in chosen))
        languages = list(dict.fromkeys(r["pair"] for r in chosen))
        width = 0.8 / len(systems)
        fig, axis = plt.subplots(figsize=(max(6.0, 1.6 + 0.45 * len(languages) * len(systems)), 3.8))
        for index, system in enumerate(systems):
            values = [_mse(rows, figure, system, language) for language in languages]
            axis.bar(np.arange(len(languages)) + (index - (len(systems) - 1) / 2) * width, values, width, label=system)
        axis.set_xticks(np.arange(len(languages)), languages)
        axis.set_ylabel("mean squared error (dev)")
        low = min(r["dev_mse"] for r in chosen)
        axis.set_ylim(max(0.0, 0.9 * low), None)
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8, ncol=min(len(systems), 5), loc="upper center", bbox_to_anchor=(0.5, -0.1))
        with atomic_output(Path(out_dir) / name) as temporary:
            fig.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
        plt.close(fig)


def _run_reproduce(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    split = lambda text: [item for item in text.split(",") if item] if text else None  # noqa: E731
    try:
        results = reproduce(
            args.dataset,
            args.out,
            scale=args.scale,
            training_languages=split(args.languages),
            adaptation_languages=split(args.adaptation_languages),
            seed=args.seed,
            verbose=0 if args.quiet else 2,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"mlms reproduce: {error}", file=sys.stderr)
        return 2
    print(results_markdown(results))
    print(f"written: {args.out}/results.json, results.md, figure2.png, figure3.png")
    return 0


def add_cli_parser(subparsers):
    """Registers `mlms reproduce`."""
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's Figures 2 and 3 on a prepared teacher corpus",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train SLSS baselines, MLMS with the three language-code strategies (Figure 2), and scratch vs\n"
            "adapted v1-v4 models for the adaptation languages (Figure 3); write results.json, results.md,\n"
            "figure2.png and figure3.png. Re-running the same command resumes (finished runs are reused).\n\n"
            "example:\n"
            "  mlms corpus build data/teacher-small --preset small --workers 2\n"
            "  mlms prepare data/teacher-small data/prepared-small --workers 2\n"
            "  mlms reproduce data/prepared-small --out runs/reproduce-small --scale small"
        ),
    )
    parser.add_argument("dataset", help="prepared teacher corpus")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--scale", choices=sorted(SCALES), default="smoke", help="training budget (default smoke)")
    parser.add_argument("--languages", default=None, help="training languages (default: the dataset's training ones)")
    parser.add_argument("--adaptation-languages", default=None, help="default: the dataset's adaptation ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.set_defaults(handler=_run_reproduce)
