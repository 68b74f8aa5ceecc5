"""Reproduce Li & Zen (2016) Figures 2 and 3 on the teacher corpus, from scratch to the results table.

Steps (each resumes when re-run after an interruption):
  1. build the espeak-ng teacher corpus (Table 1 of the paper, scaled),
  2. extract WORLD + linguistic features (`mlms prepare`),
  3. train the SLSS baselines, the MLMS models with the three language-code strategies, the from-scratch
     baselines of Polish and Brazilian Portuguese, and adapt the MLMS to them with variants v1-v4,
  4. write results.json, results.md (dev MSE, MCD, F0 RMSE, V/UV error per system and language), figure2.png and
     figure3.png.

Usage:
    python examples/reproduce_paper.py --work runs/paper --scale smoke   # minutes: checks the whole pipeline
    python examples/reproduce_paper.py --work runs/paper --scale small   # the small teacher corpus (about 1.5 h)

The same as shell commands:
    mlms corpus build runs/paper/teacher --preset small --workers 2
    mlms prepare runs/paper/teacher runs/paper/prepared --workers 2
    mlms reproduce runs/paper/prepared --out runs/paper/results --scale small
"""

import argparse
import logging
from pathlib import Path

from mlms_keras.data.prepare import prepare_dataset
from mlms_keras.data.teacher import build_teacher_corpus
from mlms_keras.evaluation.paper import results_markdown
from mlms_keras.training.reproduce import SCALES, reproduce

CORPUS_PRESET = {"smoke": "tiny", "small": "small", "small-steps": "small"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="working folder (corpus, features, runs, results)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    parser.add_argument("--workers", type=int, default=2, help="processes for corpus building and feature extraction")
    parser.add_argument("--f0-method", default="harvest", choices=("harvest", "dio"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    work = Path(args.work)
    build_teacher_corpus(work / "teacher", preset=CORPUS_PRESET[args.scale], workers=args.workers)
    if not (work / "prepared" / "dataset.json").is_file():
        prepare_dataset(work / "teacher", work / "prepared", workers=args.workers, f0_method=args.f0_method)
    results = reproduce(work / "prepared", work / "results", scale=args.scale, verbose=2)
    print(results_markdown(results))


if __name__ == "__main__":
    main()
