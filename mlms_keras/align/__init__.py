"""Forced alignment built in: transcripts + audio -> HTS labels and TextGrids, in any language the frontend speaks.

- `align(wave, sample_rate, text, language) -> Alignment` aligns one utterance with the shipped multilingual model
  (`mlms_keras.align.aligner`);
- `align_corpus(corpus, out_dir, ...)` aligns a corpus in any supported layout, on all cores, resumably, with the
  corpus-level pass and `alignment_report.json` (`mlms_keras.align.corpus`);
- `load_aligner()` loads the shipped model (`mlms_keras.align.shipped`), rebuilt by `mlms_keras.align.pretrain`.

`docs/alignment.md` describes the design and its measured accuracy.
"""

from mlms_keras.utils.lazy import lazy_exports

_EXPORTS = {
    "Alignment": "mlms_keras.align.aligner",
    "SilentAudioError": "mlms_keras.align.aligner",
    "align": "mlms_keras.align.aligner",
    "write_alignment": "mlms_keras.align.aligner",
    "AlignOptions": "mlms_keras.align.corpus",
    "AlignReport": "mlms_keras.align.corpus",
    "align_corpus": "mlms_keras.align.corpus",
    "load_aligner": "mlms_keras.align.shipped",
    "AlignerModel": "mlms_keras.align.model",
    "EmissionSettings": "mlms_keras.align.viterbi",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
