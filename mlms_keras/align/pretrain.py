"""The shipped multilingual aligner, rebuilt reproducibly: `python -m mlms_keras.align.pretrain OUT`.

1. Render teacher speech with exact labels (`render_labelled_corpus`): `TRAIN_LANGUAGES`, sentences from the
   teacher corpus's grammars and word lists, each utterance in a random voice of `TRAIN_VARIANTS` at a rate of
   `TRAIN_RATES` with a random pitch and pitch range. The benchmark's voices and rates
   (`benchmarks/bench_align.py`) are none of these.
2. Make training examples (`labelled_examples`): every utterance twice, once as rendered (with noise half of the
   time) and once through `mlms_keras.align.augment.augment` (WORLD pitch and envelope shifts, reverberation,
   noise).
3. Train the acoustic model (`mlms_keras.align.training.fit_model`), then choose the emission settings by boundary
   accuracy on held-out utterances of the training voices (`tune_emissions`).
4. Save it (`AlignerModel.save`: weights and their sha256) with the training record.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import multiprocessing
import time
import zlib
from pathlib import Path

import numpy as np

from mlms_keras.align.aligner import align_posteriors
from mlms_keras.align.augment import add_noise, augment
from mlms_keras.align.evaluation import boundary_errors, summarise_errors
from mlms_keras.align.features import log_mel, normalise, to_feature_rate
from mlms_keras.align.model import AlignerConfig, AlignerModel
from mlms_keras.align.phones import AlignmentPhones, phones_for_text
from mlms_keras.align.training import FitOptions, fit_model, frame_index, frame_targets
from mlms_keras.align.viterbi import EmissionSettings
from mlms_keras.data.readers import read_corpus
from mlms_keras.data.sentences import generate_sentences
from mlms_keras.data.teacher import UtteranceSpec, render_utterance, sentence_source, word_sentences
from mlms_keras.frontend import espeak
from mlms_keras.frontend.labels import Segment, read_hts_labels
from mlms_keras.frontend.linguistic import is_silence_label
from mlms_keras.utils.fileio import atomic_output, atomic_write_text
from mlms_keras.utils.provenance import provenance
from mlms_keras.vocoder import audio

__all__ = [
    "TRAIN_LANGUAGES",
    "TRAIN_RATES",
    "TRAIN_VARIANTS",
    "VoicePlan",
    "labelled_examples",
    "main",
    "reference_frames",
    "render_labelled_corpus",
    "tune_emissions",
]

TRAIN_LANGUAGES = ("en-us", "de", "fr", "es", "ru", "hi", "cmn", "fi")
TRAIN_VARIANTS = ("m1", "m3", "f1", "f3", "f5", "m5")
TRAIN_RATES = (135, 165, 195, 225)


@dataclasses.dataclass(frozen=True)
class VoicePlan:
    """Which voices render a labelled corpus: a variant and a rate drawn per utterance from these."""

    variants: tuple[str, ...] = TRAIN_VARIANTS
    rates: tuple[int, ...] = TRAIN_RATES
    pitch: tuple[int, int] = (35, 65)
    pitch_range: tuple[int, int] = (30, 80)


def _sentences(language: str, count: int, seed: int) -> list[str]:
    if sentence_source(language) == "grammar":
        return generate_sentences(language, count, seed)
    return word_sentences(language, count, seed)


def _render(arguments) -> str | None:
    spec, out_dir = arguments
    try:
        render_utterance(spec, out_dir)
        return None
    except (ValueError, espeak.EspeakError) as error:
        return f"{spec.utterance_id}: {error}"


def render_labelled_corpus(
    out_dir, languages, per_language: int, voices: VoicePlan, seed: int, workers: int = 1, prefix: str = "utt"
) -> Path:
    """Render espeak-ng speech with exact labels in the teacher layout (`wavs/`, `labels/`, `metadata.csv`).

    Each utterance gets a voice drawn from `voices` (seeded by `seed` and its id); existing utterances are kept
    (resume). Returns the folder. Utterances espeak-ng cannot render are left out of `metadata.csv`.
    """
    out_dir = Path(out_dir)
    specs = []
    for language in languages:
        for number, text in enumerate(_sentences(language, per_language, seed)):
            utterance_id = f"{prefix}-{language}-{number:04d}"
            rng = np.random.default_rng(zlib.crc32(f"{seed}/{utterance_id}".encode()))
            voice = espeak.SpeakerVoice(
                str(rng.choice(voices.variants)),
                int(rng.choice(voices.rates)),
                int(rng.integers(*voices.pitch, endpoint=True)),
                int(rng.integers(*voices.pitch_range, endpoint=True)),
            )
            speaker = f"{language}-{voice.variant}"
            specs.append(UtteranceSpec(utterance_id, text, language, speaker, "train", int(rng.integers(2**31)), voice))
    pending = [spec for spec in specs if not (out_dir / "labels" / f"{spec.utterance_id}.lab").is_file()]
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    if workers > 1 and pending:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            list(pool.imap_unordered(_render, [(spec, out_dir) for spec in pending], chunksize=4))
    else:
        for spec in pending:
            _render((spec, out_dir))
    lines = [
        f"{spec.utterance_id}|{spec.text}|{spec.language}|{spec.speaker_id}\n"
        for spec in specs
        if (out_dir / "labels" / f"{spec.utterance_id}.lab").is_file()
    ]
    atomic_write_text(out_dir / "metadata.csv", "".join(lines))
    return out_dir


def reference_frames(segments: list[Segment], phones: AlignmentPhones) -> list:
    """`(start_frame, end_frame, phone index or None)` of exact labels whose phones are `phones` (tones skipped)."""
    tones = {tone for group in phones.tones_after for tone in group}
    entries, number = [], 0
    for segment in segments:
        start, end = frame_index(segment.start_s), frame_index(segment.end_s)
        if is_silence_label(segment.label):
            entries.append((start, end, None))
        elif number < len(phones) and segment.label == phones.symbols[number]:
            entries.append((start, end, number))
            number += 1
        elif segment.label not in tones:
            raise ValueError(f"label {segment.label!r} does not follow the frontend's phones {phones.symbols}")
    if number != len(phones):
        raise ValueError(f"the labels have {number} of the frontend's {len(phones)} phones")
    return entries


def labelled_examples(corpus, copies: int = 2, seed: int = 0, noise_db: float | None = None) -> list:
    """`(features, packed targets)` examples of a labelled corpus: `copies` versions of each utterance (the first as
    rendered, with noise at 10-40 dB half of the time; the others through `augment`). `noise_db` instead adds
    exactly that SNR of white noise to a single copy (evaluation)."""
    examples = []
    for item in read_corpus(corpus):
        wave, rate = audio.load(item.wav_path)
        phones = phones_for_text(item.text, item.language)
        segments = read_hts_labels(item.alignment_path)
        rng = np.random.default_rng(zlib.crc32(f"{seed}/{item.utterance_id}".encode()))
        versions = []
        if noise_db is not None:
            versions.append(add_noise(wave, noise_db, rng))
        else:
            versions.append(add_noise(wave, rng.uniform(10, 40), rng) if rng.random() < 0.5 else wave)
            versions.extend(augment(wave, rate, rng) for _ in range(copies - 1))
        for version in versions:
            features = normalise(log_mel(to_feature_rate(version, rate)))
            packed = frame_targets(reference_frames(segments, phones), features.shape[0], phones)
            examples.append((features, packed))
    return examples


def _cached_examples(corpus: Path, cache: Path, seed: int) -> list:
    """`labelled_examples(corpus, copies=2)`, with the (slow, augmented) features cached in `cache`; the targets are
    always computed afresh from the labels."""
    if not cache.is_file():
        examples = labelled_examples(corpus, copies=2, seed=seed)
        with atomic_output(cache) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, x=np.concatenate([x for x, _ in examples]), lengths=[x.shape[0] for x, _ in examples])
        return examples
    with np.load(cache) as archive:  # each archive[...] reads the whole array again: read it once
        everything, lengths = archive["x"], archive["lengths"]
    bounds = np.cumsum(np.concatenate([[0], lengths]))
    features = [everything[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    examples = []
    for item in read_corpus(corpus):  # the order labelled_examples used: each utterance, then its copies
        phones = phones_for_text(item.text, item.language)
        entries = reference_frames(read_hts_labels(item.alignment_path), phones)
        for _ in range(2):
            x = features[len(examples)]
            examples.append((x, frame_targets(entries, x.shape[0], phones)))
    return examples


def tune_emissions(model: AlignerModel, items: list, grid: dict | None = None) -> tuple[EmissionSettings, dict]:
    """The emission settings with the most boundaries within 20 ms on `items` (`(features, phones, reference
    segments, duration in seconds)`), searched over `grid` (name -> values). Returns the settings and figures."""
    grid = grid or {
        "feature_weight": (2.0, 4.0, 8.0),
        "silence_offset": (-0.3, -0.15, 0.0),
        "pause_penalty": (2.0, 6.0, 10.0),
        "min_phone_frames": (1, 2),
    }
    posteriors = [model.posteriors(features) for features, _, _, _ in items]
    best = None
    for values in itertools.product(*grid.values()):
        settings = EmissionSettings(**dict(zip(grid.keys(), values)))
        errors = []
        for (_, phones, reference, duration_s), post in zip(items, posteriors):
            hypothesis = align_posteriors(phones, post, duration_s, settings).phones
            errors.append(boundary_errors(reference, hypothesis, phones))
        figures = summarise_errors(np.concatenate(errors))
        if best is None or figures["within_20ms"] > best[1]["within_20ms"]:
            best = (settings, figures)
    return best


def main(argv=None) -> int:
    """Build the shipped aligner into OUT (see the module docstring); prints the figures and the sha256."""
    parser = argparse.ArgumentParser(prog="python -m mlms_keras.align.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="model folder to write (aligner.json, weights.npz)")
    parser.add_argument("--work", default=None, help="folder for the rendered speech (default OUT/../aligner-work)")
    parser.add_argument("--per-language", type=int, default=45, help="training utterances per language")
    parser.add_argument("--dev-per-language", type=int, default=5, help="held-out utterances per language")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune-only", action="store_true", help="keep OUT's trained model, choose its settings again")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / "aligner-work"
    dev_dir = render_labelled_corpus(
        work / "dev", TRAIN_LANGUAGES, args.dev_per_language, VoicePlan(), args.seed + 1, args.workers, "dev"
    )
    if args.tune_only:
        model = AlignerModel.load(out)
        training = model.metadata.get("training", {})
    else:
        train_dir = render_labelled_corpus(
            work / "train", TRAIN_LANGUAGES, args.per_language, VoicePlan(), args.seed, args.workers, "train"
        )
        examples = _cached_examples(train_dir, work / f"features-{args.seed}-{args.per_language}.npz", args.seed)
        print(f"{len(examples)} training examples, {sum(f.shape[0] for f, _ in examples)} frames", flush=True)
        options = FitOptions(epochs=args.epochs, seed=args.seed)
        model, losses = fit_model(examples, config=AlignerConfig(), options=options, verbose=2)
        training = {
            "languages": list(TRAIN_LANGUAGES),
            "variants": list(TRAIN_VARIANTS),
            "rates_wpm": list(TRAIN_RATES),
            "utterances": len(examples) // 2,
            "fit": dataclasses.asdict(options),
            "losses": losses,
            "seconds": round(time.perf_counter() - started, 1),
        }
    dev_items = []
    for item in read_corpus(dev_dir):
        wave, rate = audio.load(item.wav_path)
        features = normalise(log_mel(to_feature_rate(add_noise(wave, 20.0, np.random.default_rng(0)), rate)))
        phones = phones_for_text(item.text, item.language)
        dev_items.append((features, phones, read_hts_labels(item.alignment_path), wave.size / rate))
    settings, figures = tune_emissions(model, dev_items)
    model.metadata.update(
        {
            "emission": dataclasses.asdict(settings),
            "training": {**training, "dev_at_20db": figures},
            "provenance": provenance(),
        }
    )
    model.save(out)
    print(f"dev (training voices, 20 dB): {figures}; emission {settings}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
