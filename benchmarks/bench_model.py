"""Training and inference speed of the MLMS acoustic model vs a naive Keras baseline.

Setup (issue [model]): the paper preset (mean tower + 6 basis towers, ReLU 256, 3 LSTMP layers of
256 cells projected to 128), batches of 16 x 200 frames, 8 speakers, 6 languages, and the frame-level
input dimension of the frontend's default 8-language layout (`--input-dim 400` gives the setup the
naive figures in docs/architecture.md were measured with).

- ours: `build_mlms_model` (fused towers: one time loop over a tower axis, input products hoisted).
- naive: L+1 separate towers of stock `keras.layers.LSTM(256)` + `Dense(128)` per layer, combined by
  the language codes, with our `SpeakerRNNOutput` on top.
- ceiling: a 2048 x 2048 fp32 matmul timed in the same run; the fraction reported is
  (model FLOP/s) / (matmul FLOP/s), counting 3x the forward FLOPs for a training step.

Variants tried are printed too: the towers' time loops through XLA or plain TF (`jit_recurrence`),
and Keras' whole-model `jit_compile=True`.

Usage: python benchmarks/bench_model.py [--quick] [--steps N]
The last line printed is JSON.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mlms_keras.frontend.layout import default_layout  # noqa: E402
from mlms_keras.layers import SpeakerRNNOutput  # noqa: E402
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model  # noqa: E402

BATCH, FRAMES = 16, 200


class NaiveCodeCombination(keras.layers.Layer):
    """h = tower_0 + sum_l lambda_l(u) tower_l with a `(U, L)` code table (baseline only)."""

    def __init__(self, num_languages, language_space_dim, **kwargs):
        super().__init__(**kwargs)
        self.codes = self.add_weight(
            name="codes", shape=(num_languages, language_space_dim), initializer="random_normal"
        )
        self.supports_masking = True

    def call(self, towers, language):
        weights = keras.ops.take(self.codes, keras.ops.cast(language, "int32"), axis=0)  # (batch, L)
        basis = keras.ops.stack(towers[1:], axis=-1)  # (batch, frames, proj, L)
        return towers[0] + keras.ops.einsum("btpl,bl->btp", basis, weights)


def build_naive_model(config):
    """L+1 separate stock-Keras towers (Dense ReLU + [LSTM + Dense projection] x layers)."""
    linguistic = keras.Input((None, config.input_dim), name="linguistic")
    language = keras.Input((), dtype="int32", name="language")
    speaker = keras.Input((), dtype="int32", name="speaker")
    towers = []
    for _ in range(1 + config.language_space_dim):
        x = keras.layers.Dense(config.relu_units, activation="relu")(linguistic)
        for _ in range(config.lstm_layers):
            x = keras.layers.LSTM(config.lstm_cells, return_sequences=True)(x)
            x = keras.layers.Dense(config.lstm_projection)(x)
        towers.append(x)
    hidden = NaiveCodeCombination(config.num_languages, config.language_space_dim)(towers, language)
    acoustic = SpeakerRNNOutput(config.num_speakers, config.output_dim)(hidden, speaker)
    return keras.Model({"linguistic": linguistic, "language": language, "speaker": speaker}, acoustic)


def forward_flops_per_frame(config):
    """Multiply-adds x 2 of one frame through all towers and the output layer."""
    towers = 1 + config.language_space_dim
    per_tower = config.input_dim * config.relu_units
    layer_input = config.relu_units
    for _ in range(config.lstm_layers):
        per_tower += (layer_input + config.lstm_projection) * 4 * config.lstm_cells  # gates
        per_tower += config.lstm_cells * config.lstm_projection  # projection
        layer_input = config.lstm_projection
    output = (config.lstm_projection + config.output_dim) * config.output_dim
    return 2 * (towers * per_tower + output)


def matmul_gflops(repeats):
    a = tf.random.normal((2048, 2048))
    b = tf.random.normal((2048, 2048))
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        matmul(a, b).numpy()
    seconds = (time.perf_counter() - start) / repeats
    return 2 * 2048**3 / seconds / 1e9


def make_batch(config, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "linguistic": rng.standard_normal((BATCH, FRAMES, config.input_dim)).astype("float32"),
        "language": rng.integers(0, config.num_languages, BATCH).astype("int32"),
        "speaker": rng.integers(0, config.num_speakers, BATCH).astype("int32"),
    }
    targets = rng.standard_normal((BATCH, FRAMES, config.output_dim)).astype("float32")
    return inputs, targets


def frames_per_second(model, inputs, targets, steps, train, jit_compile=False):
    """Frames/s of `train_on_batch` or `predict_on_batch` after one warm-up step."""
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit_compile)
    run = (lambda: model.train_on_batch(inputs, targets)) if train else (lambda: model.predict_on_batch(inputs))
    run()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return steps * BATCH * FRAMES / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps, no variants: finishes in under 60 s")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--input-dim", type=int, default=None, help="default: the frontend layout's frame dimension")
    args = parser.parse_args()
    steps = args.steps or (2 if args.quick else 6)
    input_dim = args.input_dim or default_layout().frame_dimension

    config = MLMSConfig.preset("paper", input_dim=input_dim, num_languages=6, num_speakers=8)
    inputs, targets = make_batch(config)
    flops = forward_flops_per_frame(config)
    ceiling_gflops = matmul_gflops(5 if args.quick else 20)
    intra_op_threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"threads: intra-op {intra_op_threads}, cpus {os.cpu_count()}")
    print(f"input dim {input_dim}, batch {BATCH} x {FRAMES} frames, paper preset")
    print(f"forward FLOPs per frame: {flops / 1e6:.1f} M (training step counted as 3x: {3 * flops / 1e6:.1f} M)")
    ceiling_frames = ceiling_gflops * 1e9 / (3 * flops)
    print(f"fp32 matmul 2048^3: {ceiling_gflops:.0f} GFLOP/s -> training ceiling {ceiling_frames:.0f} frames/s")

    ours = build_mlms_model(config)  # default: XLA time loops when training, plain TF loops for inference
    ours_xla_loops = build_mlms_model(config, jit_recurrence="always")
    naive = build_naive_model(config)
    results = {}
    for label, model in (("ours", ours), ("naive", naive)):
        results[f"{label}_train"] = frames_per_second(model, inputs, targets, steps, train=True)
        results[f"{label}_infer"] = frames_per_second(model, inputs, targets, steps, train=False)
    results["ours_infer_xla_loops"] = frames_per_second(ours_xla_loops, inputs, targets, steps, train=False)
    if not args.quick:
        ours_plain_loops = build_mlms_model(config, jit_recurrence="never")
        results["ours_train_plain_loops"] = frames_per_second(ours_plain_loops, inputs, targets, steps, train=True)
        results["ours_train_whole_model_xla"] = frames_per_second(
            ours_plain_loops, inputs, targets, steps, train=True, jit_compile=True
        )
        results["ours_infer_whole_model_xla"] = frames_per_second(
            ours_plain_loops, inputs, targets, steps, train=False, jit_compile=True
        )
    for name, value in results.items():
        print(f"{name:>18}: {value:8.0f} frames/s")

    best_train = max(v for k, v in results.items() if k.startswith("ours_train"))
    best_infer = max(v for k, v in results.items() if k.startswith("ours_infer"))
    summary = {
        "train_speedup_vs_naive": round(results["ours_train"] / results["naive_train"], 3),
        "infer_speedup_vs_naive": round(results["ours_infer"] / results["naive_infer"], 3),
        "train_frames_per_s": round(results["ours_train"], 1),
        "infer_frames_per_s": round(results["ours_infer"], 1),
        "naive_train_frames_per_s": round(results["naive_train"], 1),
        "naive_infer_frames_per_s": round(results["naive_infer"], 1),
        "input_dim": input_dim,
        "matmul_gflops": round(ceiling_gflops, 1),
        "matmul_ceiling_fraction": round(results["ours_train"] * 3 * flops / (ceiling_gflops * 1e9), 3),
        "best_variant_train_frames_per_s": round(best_train, 1),
        "best_variant_infer_frames_per_s": round(best_infer, 1),
    }
    summary.update(
        {f"{k}_frames_per_s": round(v, 1) for k, v in results.items() if k.startswith("ours_") and "_" in k[5:]}
    )
    summary["infer_xla_loops_speedup_vs_naive"] = round(results["ours_infer_xla_loops"] / results["naive_infer"], 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
