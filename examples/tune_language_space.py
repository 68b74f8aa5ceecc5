"""Sweep the language-space dimension L with KerasTuner in your own script (what `mlms tune` does for you).

mlms corpus build data/teacher --preset tiny
mlms prepare data/teacher data/prepared --f0-method dio
python examples/tune_language_space.py data/prepared runs/my_sweep --max-trials 3
"""

import argparse

from mlms_keras.data import Manifest, load_dataset
from mlms_keras.models.acoustic import MLMSConfig
from tuning.hypermodel import MLMSHyperModel
from tuning.results import best_result, write_results
from tuning.tuner import load_trial_model, make_tuner, run_sweep, trial_results

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("dataset", help="folder written by `mlms prepare`")
parser.add_argument("directory", help="sweep folder; run the same command again to resume")
parser.add_argument("--max-trials", type=int, default=3)
args = parser.parse_args()

info = Manifest.load(args.dataset)
training = [entry["code"] for entry in info.data["languages"] if entry["role"] == "training"]  # ids 0..U-1
speakers = [name for name, entry in info.speakers.items() if entry["language"] in training]
train = load_dataset(args.dataset, "train", 8, languages=training, seed=0, chunk_frames=100, repeat=True)
dev = load_dataset(args.dataset, "dev", 8, languages=training)

config = MLMSConfig.preset("tiny", input_dim=info.input_dim, num_languages=len(training), num_speakers=len(speakers))
hypermodel = MLMSHyperModel(config, tower_widths=[16, 32])  # L in [1, len(training)], two tower widths
tuner = make_tuner(hypermodel, args.directory, max_trials=args.max_trials)  # grid: L = 1, 2, ... first
run_sweep(tuner, train, dev, epochs=2, steps_per_epoch=10, patience=1)

results = trial_results(tuner)
write_results(results, args.directory)  # results.md, results.json, dev_mse_vs_language_space_dim.png
best = best_result(results)
model = load_trial_model(tuner, best.trial_id)  # best epoch's weights
print(f"best: L = {best.language_space_dim}, width {best.tower_width}, dev MSE {best.dev_mse:.4f}")
