"""The paper's Figures 2 and 3 and its four claims, from the rows that `mlms reproduce` scores
(`mlms_keras.training.reproduce`).

A row is one system scored on one column of a figure: `{"figure": 2 or 3, "system": label, "pair": column,
"language", "speaker", "dev_mse", "mcd_db", "f0_rmse_hz", "vuv_error_percent"}`. A column (`pair`) is a language,
scored on its female speaker as in the paper, or "language (gender)" for another trained speaker of it.

- `check_claims`: the paper's four claims, per column;
- `results_markdown`: the dev-MSE tables of both figures and every metric of every row;
- `plot_figures`: `figure2.png` and `figure3.png`, grouped bars like the paper's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlms_keras.utils.fileio import atomic_output

__all__ = [
    "CLAIMS",
    "CODE_STRATEGY_LABELS",
    "VARIANT_NAMES",
    "check_claims",
    "dev_mse_of",
    "plot_figures",
    "results_markdown",
]

#: The systems of Figure 2: the MLMS model of each language-code strategy (paper sec. 4.1), by strategy.
CODE_STRATEGY_LABELS = {"random": "MLMS rand", "one_hot": "MLMS 1-hot (init)", "one_hot_fixed": "MLMS 1-hot (fixed)"}
#: The adapted systems of Figure 3 (paper sec. 4.2).
VARIANT_NAMES = ("v1", "v2", "v3", "v4")
#: The claims `check_claims` checks.
CLAIMS = ("mlms_close_to_slss", "random_init_best", "v2_v3_better_than_scratch", "v1_most_constrained")


def dev_mse_of(rows: list[dict], figure: int, system: str, pair: str) -> float | None:
    """The dev MSE of `system` on column `pair` of `figure` in `rows` (None when there is no such row)."""
    for row in rows:
        if (row["figure"], row["system"], row["pair"]) == (figure, system, pair):
            return row["dev_mse"]
    return None


def check_claims(rows: list[dict]) -> dict:
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
    claims = {name: {"holds_for": [], "fails_for": [], "detail": {}} for name in CLAIMS}

    def record(name, language, holds, detail):
        claims[name]["holds_for" if holds else "fails_for"].append(language)
        claims[name]["detail"][language] = detail

    for language in sorted({r["pair"] for r in rows if r["figure"] == 2}):
        slss, rand = dev_mse_of(rows, 2, "SLSS", language), dev_mse_of(rows, 2, "MLMS rand", language)
        record("mlms_close_to_slss", language, rand <= 1.10 * slss, {"slss": slss, "mlms_rand": rand})
        strategies = {label: dev_mse_of(rows, 2, label, language) for label in CODE_STRATEGY_LABELS.values()}
        record("random_init_best", language, min(strategies, key=strategies.get) == "MLMS rand", strategies)
    for language in sorted({r["pair"] for r in rows if r["figure"] == 3}):
        values = {system: dev_mse_of(rows, 3, system, language) for system in ("scratch",) + VARIANT_NAMES}
        record(
            "v2_v3_better_than_scratch",
            language,
            values["v2"] < values["scratch"] and values["v3"] < values["scratch"],
            values,
        )
        record("v1_most_constrained", language, max(VARIANT_NAMES, key=values.get) == "v1", values)
    return claims


def results_markdown(results: dict) -> str:
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
            values = [dev_mse_of(rows, figure, system, language) for system in systems]
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


def plot_figures(rows: list[dict], out_dir) -> None:
    """Writes `figure2.png` and `figure3.png`: grouped bars of dev MSE per language and system, like the paper's."""
    # Here, not at the top: pyplot takes half a second to import and needs its headless backend chosen first.
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
            values = [dev_mse_of(rows, figure, system, language) for language in languages]
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
