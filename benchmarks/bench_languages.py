"""New languages from a few hundred utterances: a zoo voice adapted with v1-v4 against a scratch model.

For each language: a teacher corpus of one new speaker (`mlms corpus build --languages L`), prepared with the
voice's layout (`mlms prepare --layout-from VOICE`); then the voice adapted with each variant (`mlms adapt`), and a
single-language single-speaker model trained from scratch on the same data (`mlms train --model slss`, `mlms zoo
train-duration --languages L`, `mlms zoo pack`), as in the paper's section 4.2. Every step is one `mlms` command,
run as a subprocess and printed, so the report can quote the exact commands.

Figures per (language, system), all on the dev split of the new speaker (the voices' `metadata.json` metrics):
dev MCD (dB), F0 RMSE (Hz), V/UV error (%), duration RMSE (frames); and the wall time and CPU time of building
the system. The baseline of the time ratio is the scratch model of the same language, measured in the same run.

Re-running the same command resumes: a finished voice is reused (its time is the one recorded when it was
built), an interrupted one continues where its command stopped.

Usage:
    python benchmarks/bench_languages.py --out runs/languages [--languages sv:f2,ru:m3,hi:f4] [--utterances 150]
        [--variants v1,v2,v3,v4] [--epochs-per-phase 5] [--scratch-epochs 20] [--voice teacher-small]
        [--markdown table.md] [--plots docs/images]

The last line is JSON: {"languages": {code: {system: {mcd_db, f0_rmse_hz, vuv_error_percent,
duration_rmse_frames, wall_s, cpu_s, time_vs_scratch}}}, "settings": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mlms_keras.utils.fileio import atomic_write_json  # noqa: E402

METRICS = ("mcd_db", "f0_rmse_hz", "vuv_error_percent", "duration_rmse_frames")
#: A sentence per language that no corpus of this script holds (the corpora are word-frequency salad), for --plots.
HELD_OUT = {
    "ru": "Завтра утром мы поедем к бабушке в деревню.",
    "hi": "कल सुबह हम अपनी दादी से मिलने गाँव जाएँगे।",
    "sv": "I morgon bitti åker vi till mormor på landet.",
    "cs": "Zítra ráno pojedeme k babičce na venkov.",
    "el": "Αύριο το πρωί θα πάμε στη γιαγιά στο χωριό.",
}
TIMINGS_NAME = "timings.json"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mlms(arguments: list[str], log) -> tuple[float, float]:
    """Runs `mlms ARGUMENTS` (this interpreter's package) and returns `(wall seconds, CPU seconds)`."""
    command = "mlms " + shlex.join(arguments)
    print(f"$ {command}", flush=True)
    log.write(f"$ {command}\n")
    log.flush()
    started, cpu_started = time.perf_counter(), children_cpu_seconds()
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-m", "mlms_keras.cli", *arguments], stdout=log, stderr=subprocess.STDOUT, env=environment
    )
    if completed.returncode != 0:
        raise SystemExit(f"failed ({completed.returncode}): {command}; see {log.name}")
    return time.perf_counter() - started, children_cpu_seconds() - cpu_started


class Timings:
    """Seconds per step, kept in `OUT/timings.json` so a resumed run reports the time of each finished step."""

    def __init__(self, folder: Path):
        self.path = folder / TIMINGS_NAME
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def record(self, key: str, commands: list[str], wall: float, cpu: float, resumed: bool) -> None:
        self.data[key] = {"commands": commands, "wall_s": wall, "cpu_s": cpu, "resumed": resumed}
        atomic_write_json(self.path, self.data, indent=1)


def language_steps(args, code: str, variant_name: str, timings: Timings, log) -> dict:
    """Builds the corpus, the prepared dataset, the adapted voices and the scratch voice of one language."""
    out = Path(args.out)
    corpus, prepared = out / f"{code}-corpus", out / f"{code}-prepared"
    speaker = f"{code}-{variant_name}"

    def step(key: str, done: Path, commands: list[list[str]], started_marker: Path | None = None):
        if done.exists():
            return  # finished in an earlier run; its time is in timings.json
        resumed = started_marker is not None and started_marker.exists()
        wall = cpu = 0.0
        for arguments in commands:
            seconds, cpu_seconds = run_mlms(arguments, log)
            wall, cpu = wall + seconds, cpu + cpu_seconds
        timings.record(key, ["mlms " + shlex.join(arguments) for arguments in commands], wall, cpu, resumed)

    build = ["corpus", "build", str(corpus), "--languages", code, "--utterances", str(args.utterances)]
    build += ["--voice-variant", variant_name, "--seed", str(args.seed), "--workers", str(args.workers), "--quiet"]
    step(f"{code}/corpus", corpus / "corpus.json", [build], corpus)
    prepare = ["prepare", str(corpus), str(prepared), "--layout-from", args.voice, "--workers", str(args.workers)]
    step(f"{code}/prepare", prepared / "dataset.json", [prepare + ["--quiet"]], prepared)

    results = {}
    for variant in args.variants:
        voice = out / f"{code}-{variant}"
        adapt = ["adapt", args.voice, str(prepared), "--language", code, "--speaker", speaker, "--variant", variant]
        adapt += ["--epochs-per-phase", str(args.epochs_per_phase), "--seed", str(args.seed), "--out", str(voice)]
        step(f"{code}/{variant}", voice / "metadata.json", [adapt + ["--quiet"]], voice)
        results[variant] = voice
    acoustic, duration, voice = (
        out / f"{code}-scratch-acoustic",
        out / f"{code}-scratch-duration",
        out / f"{code}-scratch",
    )
    train = ["train", str(prepared), "--model", "slss", "--languages", code, "--speakers", speaker, "--preset"]
    train += [
        args.scratch_preset,
        "--epochs",
        str(args.scratch_epochs),
        "--seed",
        str(args.seed),
        "--out",
        str(acoustic),
    ]
    train_duration = ["zoo", "train-duration", str(prepared), "--languages", code, "--epochs", str(args.scratch_epochs)]
    train_duration += ["--seed", str(args.seed), "--out", str(duration)]
    pack = ["zoo", "pack", "--acoustic", str(acoustic), "--duration", str(duration), "--dataset", str(prepared)]
    pack += ["--name", f"{code}-scratch", "--out", str(voice)]
    step(f"{code}/scratch", voice / "metadata.json", [train + ["--quiet"], train_duration, pack], acoustic)
    results["scratch"] = voice
    return results


def figures(code: str, voices: dict, timings: Timings) -> dict:
    """`system -> metrics and times` of one language, read back from the voices and `timings.json`."""
    rows = {}
    for system, folder in voices.items():
        metadata = json.loads((Path(folder) / "metadata.json").read_text())
        metrics = metadata["metrics"]["per_language"][code]
        timing = timings.data.get(f"{code}/{system}", {"wall_s": float("nan"), "cpu_s": float("nan"), "resumed": None})
        rows[system] = {key: metrics.get(key) for key in METRICS}
        rows[system].update(
            dev_utterances=metrics.get("utterances"),
            wall_s=round(timing["wall_s"], 1),
            cpu_s=round(timing["cpu_s"], 1),
            resumed=timing["resumed"],
        )
    for system in rows:
        rows[system]["time_vs_scratch"] = round(rows[system]["wall_s"] / rows["scratch"]["wall_s"], 2)
    return rows


#: Fonts tried after DejaVu Sans for the plot titles' held-out sentences, when installed.
TITLE_FONT_FALLBACKS = ("Noto Sans Devanagari", "Lohit Devanagari", "Noto Sans Arabic", "Noto Sans CJK SC")


def plot_held_out(code: str, variant_name: str, voices: dict, systems: list[str], png: Path) -> None:
    """Spectrograms and F0 contours of the held-out sentence: the espeak-ng teacher, then each of `systems`.

    The voices speak with the postfilter off (`postfilter_beta=1.0`), as the metrics compare them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    # DejaVu Sans has no Devanagari, Arabic or Han: fall back to installed fonts that do (e.g. Debian's
    # fonts-lohit-deva, fonts-noto-core) so that the title's sentence is readable; without them it shows boxes.
    installed = {font.name for font in font_manager.fontManager.ttflist}
    fallbacks = [name for name in TITLE_FONT_FALLBACKS if name in installed]
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *fallbacks]

    from mlms_keras import vocoder
    from mlms_keras.data.teacher.speakers import language_speaker, speaker_f0_range_hz
    from mlms_keras.frontend.espeak.synthesis import synthesize as espeak_synthesize
    from mlms_keras.synthesis import Synthesizer
    from mlms_keras.zoo import load_voice

    text, teacher = HELD_OUT[code], language_speaker(code, variant_name)
    waves = {"teacher (espeak-ng)": espeak_synthesize(text, code, teacher.voice).waveform}
    rate = 22050
    for system in systems:
        voice = load_voice(voices[system])
        waves[system] = Synthesizer(voice, postfilter_beta=1.0).synthesize(text, code, teacher.speaker_id)
        rate = voice.sample_rate
    floor, ceiling = speaker_f0_range_hz(teacher)
    colours = matplotlib.colormaps["magma"].with_extremes(under="black", bad="black")  # digital silence: black
    figure, axes = plt.subplots(len(waves) + 1, 1, figsize=(10, 2.2 * (len(waves) + 1)), constrained_layout=True)
    for axis, (name, wave) in zip(axes, waves.items()):
        axis.specgram(wave, NFFT=1024, Fs=rate, noverlap=768, cmap=colours, vmin=-120)
        axis.set_ylim(0, 8000)
        axis.set_ylabel("Hz")
        axis.set_title(f"{name}: {len(wave) / rate:.2f} s", fontsize=9, loc="left")
        features = vocoder.analyze(wave.astype(np.float64), rate, f0_method="harvest", f0_floor=floor, f0_ceil=ceiling)
        f0 = np.where(features.vuv > 0.5, np.exp(features.lf0), np.nan)
        axes[-1].plot(np.arange(len(f0)) * 0.005, f0, label=name, linewidth=1)
    axes[-1].set_ylabel("F0 (Hz)")
    axes[-1].set_xlabel("time (s)")
    axes[-1].legend(fontsize=8)
    figure.suptitle(f"{code}: {text}", fontsize=10)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=80)
    plt.close(figure)
    print(f"wrote {png}", flush=True)


def markdown(results: dict) -> str:
    lines = []
    for code, rows in results.items():
        lines += [
            f"#### {code}",
            "",
            "| system | dev MCD (dB) | F0 RMSE (Hz) | V/UV error (%) | duration RMSE (frames) | wall (s) | CPU (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for system, row in rows.items():
            values = " | ".join(f"{row[key]:.2f}" if row[key] is not None else "n/a" for key in METRICS)
            lines.append(f"| {system} | {values} | {row['wall_s']:.0f} | {row['cpu_s']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="work folder (corpora, datasets, voices, log, timings)")
    parser.add_argument("--languages", default="sv:f2,ru:m3,hi:f4", help="code:voice-variant pairs")
    parser.add_argument("--utterances", type=int, default=150, help="utterances per language (about 5 %% dev)")
    parser.add_argument("--variants", default="v1,v2,v3,v4")
    parser.add_argument("--epochs-per-phase", type=int, default=5)
    parser.add_argument("--scratch-epochs", type=int, default=20, help="maximum epochs (early stopping on dev)")
    parser.add_argument("--scratch-preset", default="small")
    parser.add_argument("--voice", default="teacher-small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    parser.add_argument("--plots", default=None, help="folder for a spectrogram + F0 PNG per language")
    args = parser.parse_args()
    args.variants = [variant for variant in args.variants.split(",") if variant]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = Timings(out)
    results = {}
    with open(out / "commands.log", "a", encoding="utf-8") as log:
        for pair in args.languages.split(","):
            code, _, variant_name = pair.partition(":")
            voices = language_steps(args, code, variant_name or "f2", timings, log)
            results[code] = figures(code, voices, timings)
            print(markdown({code: results[code]}), flush=True)
            if args.plots and code in HELD_OUT:
                best = min(args.variants, key=lambda variant: results[code][variant]["mcd_db"])
                png = Path(args.plots) / f"languages_{code}.png"
                plot_held_out(code, variant_name or "f2", voices, [best, "scratch"], png)
    if args.markdown:
        Path(args.markdown).write_text(markdown(results), encoding="utf-8")
    settings = {key: value for key, value in vars(args).items() if key not in ("markdown",)}
    print(json.dumps({"languages": results, "settings": settings}))


if __name__ == "__main__":
    main()
