"""The results of a sweep: one `TrialResult` per trial, a markdown + JSON table and a plot of dev MSE against L.

Plain data and files only (no TensorFlow): `tuning.tuner.trial_results` reads the rows from a tuner, these
functions write them. Every file is written atomically (temporary file + `os.replace`).
"""

import dataclasses
import json
import math
from pathlib import Path

from mlms_keras.utils.fileio import atomic_output, atomic_write_json, atomic_write_text

__all__ = [
    "PLOT_FILE",
    "RESULTS_JSON",
    "RESULTS_MARKDOWN",
    "TrialResult",
    "best_result",
    "plot_dev_mse",
    "read_results",
    "results_markdown",
    "write_results",
]

RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"
PLOT_FILE = "dev_mse_vs_language_space_dim.png"


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """One trial of a sweep.

    Attributes:
        trial_id: KerasTuner's trial id.
        status: `"COMPLETED"`, `"FAILED"`, `"INVALID"`, `"RUNNING"` (interrupted; re-run on resume) or `"IDLE"`.
        language_space_dim: L.
        tower_width: ReLU units = LSTMP cells of every tower layer.
        learning_rate: Adam step size.
        dev_mse: best `val_loss` over the trial's epochs: dev-set MSE over unmasked frames, normalised units.
            `None` unless completed.
        best_epoch: 1-based epoch of `dev_mse` (the checkpoint that was kept).
        epochs_run: epochs trained (early stopping may end a trial before the epoch budget).
        parameter_count: trainable and non-trainable parameters of the trial's model.
        seconds: wall-clock seconds of the trial's training (build, fit and validation).
        dev_mse_per_language: `{language code: dev MSE}` at the best epoch, pooled over each language's
            unmasked frames (`mlms_keras.training.callbacks.PerLanguageDevMSE`); `None` when not recorded.
        error: last line of the error of a failed trial.
    """

    trial_id: str
    status: str
    language_space_dim: int
    tower_width: int
    learning_rate: float
    dev_mse: float | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    parameter_count: int | None = None
    seconds: float | None = None
    dev_mse_per_language: dict | None = None
    error: str | None = None

    @property
    def completed(self):
        return self.status == "COMPLETED" and self.dev_mse is not None and math.isfinite(self.dev_mse)


def best_result(results):
    """The completed trial with the lowest dev MSE (ties: the smaller L, then the earlier trial), or `None`."""
    completed = [result for result in results if result.completed]
    if not completed:
        return None
    return min(completed, key=lambda r: (r.dev_mse, r.language_space_dim, r.trial_id))


def _sorted(results):
    return sorted(results, key=lambda r: (r.language_space_dim, r.tower_width, r.learning_rate, r.trial_id))


def _format(value, pattern):
    return "-" if value is None else format(value, pattern)


def results_markdown(results, header=None):
    """A markdown report: one table row per trial (sorted by L), the best trial, and failed trials.

    Args:
        results: `TrialResult`s.
        header: optional dict of `label -> value` lines printed above the table (dataset, command, ...).
    """
    best = best_result(results)
    lines = ["# MLMS language-space sweep", ""]
    for label, value in (header or {}).items():
        lines.append(f"- {label}: {value}")
    if header:
        lines.append("")
    lines += [
        "dev MSE: best `val_loss` of the trial, the mean squared error over unmasked dev frames in normalised units "
        "(all 49 outputs).",
        "",
        "| trial | L | tower width | learning rate | parameters | epochs | best epoch | dev MSE | minutes | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in _sorted(results):
        mark = " **(best)**" if best is not None and result is best else ""
        minutes = None if result.seconds is None else result.seconds / 60
        lines.append(
            f"| {result.trial_id} | {result.language_space_dim} | {result.tower_width} | {result.learning_rate:g} | "
            f"{_format(result.parameter_count, ',')} | {_format(result.epochs_run, 'd')} | "
            f"{_format(result.best_epoch, 'd')} | {_format(result.dev_mse, '.4f')}{mark} | {_format(minutes, '.1f')} | "
            f"{result.status} |"
        )
    lines.append("")
    languages = sorted(
        {code for r in results if r.completed and r.dev_mse_per_language for code in r.dev_mse_per_language}
    )
    if languages:
        lines += [
            "Dev MSE per language at each trial's best epoch (squared errors pooled over the language's unmasked "
            "frames):",
            "",
            "| trial | L | " + " | ".join(languages) + " |",
            "|---|---:|" + "---:|" * len(languages),
        ]
        for result in _sorted(results):
            if result.completed and result.dev_mse_per_language:
                cells = [_format(result.dev_mse_per_language.get(code), ".4f") for code in languages]
                lines.append(f"| {result.trial_id} | {result.language_space_dim} | " + " | ".join(cells) + " |")
        lines.append("")
    if best is None:
        lines.append("No trial completed.")
    else:
        lines.append(
            f"Best: trial {best.trial_id}, L = {best.language_space_dim}, tower width {best.tower_width}, "
            f"learning rate {best.learning_rate:g}: dev MSE {best.dev_mse:.4f} (epoch {best.best_epoch})."
        )
    failed = [result for result in results if not result.completed and result.status != "RUNNING"]
    if failed:
        lines += ["", "Trials that did not complete (not re-run on resume; use a new directory to retry them):", ""]
        lines += [
            f"- trial {r.trial_id} (L = {r.language_space_dim}): {r.status}: {r.error or 'no message'}" for r in failed
        ]
    interrupted = [result for result in results if result.status == "RUNNING"]
    if interrupted:
        lines += [
            "",
            "Interrupted trials (re-run when the sweep resumes): " + ", ".join(r.trial_id for r in interrupted),
        ]
    return "\n".join(lines) + "\n"


def _finite_or_none(value):
    return None if value is None or not math.isfinite(value) else value


def _json_row(result):
    row = dataclasses.asdict(result)
    # JSON has no NaN; a non-finite loss belongs to a trial that did not complete.
    row["dev_mse"] = _finite_or_none(row["dev_mse"])
    if row["dev_mse_per_language"] is not None:
        row["dev_mse_per_language"] = {code: _finite_or_none(v) for code, v in row["dev_mse_per_language"].items()}
    return row


def write_results(results, out_dir, header=None):
    """Writes `results.json`, `results.md` and the dev-MSE plot into `out_dir`.

    Args:
        results: `TrialResult`s.
        out_dir: folder for the three files (created if needed).
        header: optional dict of `label -> value` stored with the table (dataset, command, objective, ...).

    Returns:
        dict `{"json": Path, "markdown": Path, "plot": Path}`.
    """
    out_dir = Path(out_dir)
    best = best_result(results)
    payload = {
        "header": dict(header or {}),
        "objective": "val_loss",
        "best_trial": None if best is None else best.trial_id,
        "trials": [_json_row(result) for result in _sorted(results)],
    }
    paths = {"json": out_dir / RESULTS_JSON, "markdown": out_dir / RESULTS_MARKDOWN, "plot": out_dir / PLOT_FILE}
    atomic_write_json(paths["json"], payload, indent=2, allow_nan=False)
    atomic_write_text(paths["markdown"], results_markdown(results, header))
    plot_dev_mse(results, paths["plot"])
    return paths


def read_results(path):
    """Reads `results.json` (a file or the folder holding it) back into `TrialResult`s."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [TrialResult(**row) for row in payload["trials"]]


def plot_dev_mse(results, path, title="MLMS sweep: dev MSE against the language-space dimension"):
    """Writes a PNG of dev MSE (y) against L (x): one line per (tower width, learning rate), best trial starred.

    With a single (width, learning rate) group, each language's dev MSE is drawn too (dashed), when recorded.

    Args:
        results: `TrialResult`s; trials that did not complete are left out.
        path: the PNG file to write.
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    completed = [result for result in results if result.completed]
    figure = Figure(figsize=(6.4, 4.2), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    groups = sorted({(r.tower_width, r.learning_rate) for r in completed})
    for width, learning_rate in groups:
        points = sorted(
            (r.language_space_dim, r.dev_mse)
            for r in completed
            if (r.tower_width, r.learning_rate) == (width, learning_rate)
        )
        label = f"width {width}, lr {learning_rate:g}"
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    if len(groups) == 1:
        languages = sorted({code for r in completed if r.dev_mse_per_language for code in r.dev_mse_per_language})
        for code in languages:
            points = sorted(
                (r.language_space_dim, r.dev_mse_per_language[code])
                for r in completed
                if r.dev_mse_per_language and r.dev_mse_per_language.get(code) is not None
            )
            axes.plot(
                [p[0] for p in points], [p[1] for p in points], linestyle="--", linewidth=0.9, alpha=0.6, label=code
            )
    best = best_result(results)
    if best is not None:
        axes.plot(
            [best.language_space_dim],
            [best.dev_mse],
            marker="*",
            markersize=16,
            linestyle="none",
            color="black",
            label=f"best (L = {best.language_space_dim})",
        )
    if not completed:
        axes.text(0.5, 0.5, "no completed trial", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("language-space dimension L (basis towers)")
    axes.set_ylabel("dev MSE (normalised units)")
    axes.set_title(title, fontsize=10)
    dims = sorted({r.language_space_dim for r in completed})
    if dims:
        axes.set_xticks(range(dims[0], dims[-1] + 1))
    axes.grid(True, alpha=0.3)
    if completed:
        axes.legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png")
