"""Text-to-wave speed of a zoo voice on ONE CPU core: real-time factor per stage, and streaming first-chunk latency.

Stages (seconds of work per second of audio): frontend (espeak-ng analysis, feature rows, frame expansion and
normalisation), duration model, acoustic model, vocoder (postfilter + WORLD synthesis). Measured with
`Synthesizer.timer` over a few sentences in several languages, after one warm-up (tracing) pass.

Streaming: time from calling `Synthesizer.stream` to its first audio chunk, for a 10-word sentence (median of
several runs), with the acoustic model's time loops run as a TensorFlow graph loop ("graph") and compiled by XLA
for the fixed chunk shape ("xla", compiled during warm-up). The one-pass time of the same sentence is the
baseline measured in the same run.

Targets (issue 7): RTF <= 0.1, first audio <= 100 ms.

Usage:
    python benchmarks/bench_synthesis.py [--voice teacher-small] [--repeats 5] [--chunk-frames 48]

The last line is JSON: rtf, rtf_per_stage, first_chunk_ms (the better streaming mode), first_chunk_ms_graph,
first_chunk_ms_xla, one_pass_ms (same sentence), stream_rtf, audio_seconds.
"""

import os

# One core: set before numpy / TensorFlow start their thread pools.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from mlms_keras.synthesis import Synthesizer  # noqa: E402
from mlms_keras.zoo import list_voices, load_voice  # noqa: E402

SENTENCES = (
    ("en-us", "en-us-female", "The quick brown fox jumps over the lazy dog near the river bank."),
    ("fr", "fr-female", "Le petit chat dort tranquillement sur le canapé du salon."),
    ("de", "de-female", "Der alte Mann liest jeden Morgen die Zeitung im Garten."),
    ("pl", "en-us-male", "Dzień dobry, jak się dzisiaj masz, mój drogi przyjacielu?"),
    ("pt-br", "it-female", "O menino comprou um livro novo na livraria da esquina."),
)
TEN_WORDS = ("en-us", "en-us-female", "Please call Stella and ask her to bring these things.")


def first_chunk_ms(synthesizer, language, speaker, text, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stream = synthesizer.stream(text, language, speaker)
        next(stream)
        times.append(1000 * (time.perf_counter() - start))
        stream.close()
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default=None, help="voice name, folder or URL (default: first built-in voice)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-frames", type=int, default=48)
    args = parser.parse_args()
    voice = load_voice(args.voice or list_voices()[0]["name"])
    usable = [
        (language, speaker, text)
        for language, speaker, text in SENTENCES
        if language in voice.languages and speaker in voice.speakers
    ]

    synthesizer = Synthesizer(voice, chunk_frames=args.chunk_frames)
    for language, speaker, _ in usable:
        synthesizer.warm_up(language, speaker)
    audio_seconds = 0.0
    start = time.perf_counter()
    for language, speaker, text in usable:
        audio_seconds += len(synthesizer.synthesize(text, language, speaker)) / synthesizer.sample_rate
    wall = time.perf_counter() - start
    stages = {stage: seconds / audio_seconds for stage, seconds in synthesizer.timer.seconds.items()}
    rtf = wall / audio_seconds
    print(f"voice {voice.name}: {len(usable)} sentences, {audio_seconds:.1f} s of audio, 1 core")
    print(f"one pass: RTF {rtf:.4f}  (" + ", ".join(f"{k} {v:.4f}" for k, v in stages.items()) + ")")

    synthesizer.timer = type(synthesizer.timer)()
    start = time.perf_counter()
    streamed_seconds = 0.0
    for language, speaker, text in usable:
        for chunk in synthesizer.stream(text, language, speaker):
            streamed_seconds += len(chunk) / synthesizer.sample_rate
    stream_rtf = (time.perf_counter() - start) / streamed_seconds
    print(f"streaming: RTF {stream_rtf:.4f} ({stream_rtf / rtf:.2f} x one pass)")

    language, speaker, text = TEN_WORDS
    start = time.perf_counter()
    for _ in range(args.repeats):
        synthesizer.synthesize(text, language, speaker)
    one_pass_ms = 1000 * (time.perf_counter() - start) / args.repeats
    graph_ms = first_chunk_ms(synthesizer, language, speaker, text, args.repeats)
    compiled = Synthesizer(voice, chunk_frames=args.chunk_frames, jit_streaming=True)
    compiled.warm_up(language, speaker)
    xla_ms = first_chunk_ms(compiled, language, speaker, text, args.repeats)
    print(
        f"10-word sentence: one pass {one_pass_ms:.1f} ms; first streamed chunk {graph_ms:.1f} ms (graph loop, "
        f"{graph_ms / one_pass_ms:.2f} x one pass), {xla_ms:.1f} ms (XLA, chunk {args.chunk_frames} frames)"
    )
    result = {
        "rtf": round(rtf, 5),
        "rtf_per_stage": {k: round(v, 5) for k, v in stages.items()},
        "stream_rtf": round(stream_rtf, 5),
        "first_chunk_ms": round(min(graph_ms, xla_ms), 2),
        "first_chunk_ms_graph": round(graph_ms, 2),
        "first_chunk_ms_xla": round(xla_ms, 2),
        "one_pass_ms": round(one_pass_ms, 2),
        "audio_seconds": round(audio_seconds, 2),
        "chunk_frames": args.chunk_frames,
        "voice": voice.name,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
