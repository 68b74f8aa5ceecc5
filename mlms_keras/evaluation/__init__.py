"""Evaluation: objective metrics with Merlin's definitions (`metrics`: MCD, F0 RMSE, V/UV error, BAP distortion,
duration RMSE) and the paper's Figures 2 and 3 with its claims (`paper`, for `mlms reproduce`). Pure numpy: no
TensorFlow at import (the Keras callback that logs the metrics is `mlms_keras.training.callbacks`)."""

__all__: list[str] = []
