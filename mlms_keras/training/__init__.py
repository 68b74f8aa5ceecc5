"""Training: the run format, one resumable `model.fit`, adaptation v1-v4, the duration model's training, the
paper's experiments and multi-worker training with `tf.distribute`.

| module | what it holds |
|---|---|
| `runs` | the run folder: file names, `training.json`, table selection, id remapping, `load_run` |
| `losses` | the padding mask and the pooled masked MSE (numpy and TensorFlow forms) |
| `callbacks` | per-language dev MSE, acoustic dev metrics, history file, best checkpoint, resumable early stopping |
| `fit` | `TrainingOptions`, `train`, `train_on_prepared` (`mlms train`) |
| `adaptation` | phases, closest speaker, `AdaptationOptions`, `adapt`, `adapt_on_prepared` (`mlms adapt`) |
| `duration` | the duration model's statistics, batches, training and evaluation (`mlms zoo train-duration`) |
| `reproduce` | the paper's Figures 2 and 3 (`mlms reproduce`) |
| `distributed` | `tf.distribute` training (`mlms train --distributed`) |
"""

__all__: list[str] = []
