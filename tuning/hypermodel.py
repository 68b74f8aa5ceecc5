"""A KerasTuner hypermodel over the MLMS model's language-space dimension L.

Li & Zen (2016) argue that a language space smaller than the number of training languages (L < U) forces the
languages to cluster and share information (sec. 2), yet their experiments use L = U = 6 (sec. 4.1). The
hypermodel measures that trade-off: it searches L in [1, number of training languages] (Eq. 1 needs at least one
basis tower; L = 0 is the SLSS baseline, `build_slss_model`). Tower width (ReLU units and LSTMP cells, with
the paper's projection ratio P = cells / 2) and the Adam learning rate can be searched too; both are `Choice`
hyperparameters so that every KerasTuner oracle, grid search included, can enumerate them.

Hyperparameter names (the keys of `trial.hyperparameters.values`):

- `language_space_dim`: L, an integer in `[min_language_space_dim, max_language_space_dim]`.
- `tower_width`: ReLU units and memory cells per tower layer (only when `tower_widths` is given).
- `learning_rate`: Adam step size (only when `learning_rates` is given).
"""

import dataclasses

import keras
import keras_tuner

from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model
from mlms_keras.utils.validation import check_integer

__all__ = [
    "DEFAULT_CLIPNORM",
    "DEFAULT_LEARNING_RATE",
    "HP_LANGUAGE_SPACE_DIM",
    "HP_LEARNING_RATE",
    "HP_TOWER_WIDTH",
    "MLMSHyperModel",
]

HP_LANGUAGE_SPACE_DIM = "language_space_dim"
HP_TOWER_WIDTH = "tower_width"
HP_LEARNING_RATE = "learning_rate"
# The optimizer of `mlms train` (Adam, 1e-3, no clipping), so a sweep's best L carries over to a training run.
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_CLIPNORM = None


def _positive_values(name, values, kind):
    values = tuple(values)
    if not values:
        raise ValueError(f"`{name}` must list at least one value; received an empty list")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            raise ValueError(f"`{name}` must hold positive {kind.__name__} values; received {name}={list(values)!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"`{name}` lists a value twice: {list(values)!r}")
    return values


class MLMSHyperModel(keras_tuner.HyperModel):
    """Builds and compiles `build_mlms_model` for one point of the search space.

    Every model shares the fixed sizes of `base_config` (input dimension D, language and speaker tables, LSTMP
    layers, output dimension); the trial's hyperparameters replace L and, when searched, the tower width. Models
    are compiled with Adam and the mean squared error over unmasked frames (the paper's training criterion), so
    `val_loss` is the dev-set MSE in normalised units.

    Args:
        base_config: an `MLMSConfig` with the dataset's sizes; its `language_space_dim` is the default L only
            in the sense of being replaced per trial.
        max_language_space_dim: largest L searched; the number of training languages (paper: 6). Defaults to
            `base_config.num_languages`. Must not exceed it.
        min_language_space_dim: smallest L searched (default 1).
        tower_widths: optional tower widths to search (ReLU units = LSTMP cells = width, projection = width // 2).
            `None` keeps the widths of `base_config`.
        learning_rates: optional Adam learning rates to search. `None` uses `learning_rate`.
        learning_rate: the fixed learning rate when `learning_rates` is `None`.
        clipnorm: gradient-norm clipping of Adam (`None` for none).
        jit_recurrence: passed to `build_mlms_model` (XLA time loops while training).

    Example:
    >>> config = MLMSConfig.preset("tiny", input_dim=6, num_languages=3, num_speakers=4)
    >>> hypermodel = MLMSHyperModel(config)
    >>> hp = keras_tuner.HyperParameters()
    >>> model = hypermodel.build(hp)
    >>> hp.get("language_space_dim"), model.get_layer("towers").language_space_dim
    (1, 1)
    """

    def __init__(
        self,
        base_config,
        max_language_space_dim=None,
        min_language_space_dim=1,
        tower_widths=None,
        learning_rates=None,
        learning_rate=DEFAULT_LEARNING_RATE,
        clipnorm=DEFAULT_CLIPNORM,
        jit_recurrence="training",
        name="mlms",
    ):
        super().__init__(name=name, tunable=True)
        if not isinstance(base_config, MLMSConfig):
            raise ValueError(f"`base_config` must be an MLMSConfig; received {type(base_config).__name__}")
        if base_config.code_init != "random":
            # one_hot codes fix L to the language count (ClusterAdaptiveTowers checks), so L could not vary.
            raise ValueError(
                f"Sweeping L needs code_init='random'; received base_config.code_init={base_config.code_init!r}"
            )
        if max_language_space_dim is None:
            max_language_space_dim = base_config.num_languages
        min_language_space_dim = check_integer("min_language_space_dim", min_language_space_dim)
        max_language_space_dim = check_integer("max_language_space_dim", max_language_space_dim)
        if max_language_space_dim > base_config.num_languages:
            raise ValueError(
                f"`max_language_space_dim` ({max_language_space_dim}) exceeds the number of languages "
                f"({base_config.num_languages}); L ranges over [1, number of training languages]"
            )
        if min_language_space_dim > max_language_space_dim:
            raise ValueError(
                f"`min_language_space_dim` ({min_language_space_dim}) > `max_language_space_dim` "
                f"({max_language_space_dim})"
            )
        self.base_config = base_config
        self.min_language_space_dim = min_language_space_dim
        self.max_language_space_dim = max_language_space_dim
        self.tower_widths = None if tower_widths is None else _positive_values("tower_widths", tower_widths, int)
        if self.tower_widths is not None and min(self.tower_widths) < 2:
            raise ValueError(f"`tower_widths` must be >= 2 (projection = width // 2); received {list(tower_widths)}")
        self.learning_rates = (
            None if learning_rates is None else _positive_values("learning_rates", map(float, learning_rates), float)
        )
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0; received learning_rate={learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.clipnorm = clipnorm
        self.jit_recurrence = jit_recurrence

    def declare(self, hp):
        """Registers this hypermodel's hyperparameters in `hp` and returns their values.

        Returns:
            `(language_space_dim, tower_width or None, learning_rate)` for the trial `hp` describes.
        """
        language_space_dim = hp.Int(
            HP_LANGUAGE_SPACE_DIM, self.min_language_space_dim, self.max_language_space_dim, step=1
        )
        tower_width = None
        if self.tower_widths is not None:
            tower_width = hp.Choice(HP_TOWER_WIDTH, list(self.tower_widths), ordered=True)
        learning_rate = self.learning_rate
        if self.learning_rates is not None:
            learning_rate = hp.Choice(HP_LEARNING_RATE, list(self.learning_rates), ordered=True)
        return language_space_dim, tower_width, learning_rate

    def config_for(self, hp):
        """The `MLMSConfig` of the model that `build(hp)` creates."""
        language_space_dim, tower_width, _ = self.declare(hp)
        widths = {}
        if tower_width is not None:
            widths = dict(relu_units=tower_width, lstm_cells=tower_width, lstm_projection=tower_width // 2)
        return dataclasses.replace(self.base_config, language_space_dim=language_space_dim, **widths)

    def learning_rate_for(self, hp):
        """The Adam learning rate of the trial `hp` describes."""
        return self.declare(hp)[2]

    def build(self, hp):
        """A compiled MLMS model for the trial `hp`: inputs and outputs as `build_mlms_model`."""
        model = build_mlms_model(self.config_for(hp), jit_recurrence=self.jit_recurrence, name=self.name)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate_for(hp), clipnorm=self.clipnorm),
            loss="mse",
        )
        return model

    def search_space_size(self):
        """Number of distinct points in the search space (what a grid search enumerates)."""
        size = self.max_language_space_dim - self.min_language_space_dim + 1
        for values in (self.tower_widths, self.learning_rates):
            size *= 1 if values is None else len(values)
        return size

    def describe(self):
        """JSON-serialisable description of the search space and the fixed sizes (for sweep records)."""
        return {
            "base_config": self.base_config.to_dict(),
            "language_space_dim": [self.min_language_space_dim, self.max_language_space_dim],
            "tower_widths": None if self.tower_widths is None else list(self.tower_widths),
            "learning_rates": None if self.learning_rates is None else list(self.learning_rates),
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "optimizer": "adam",
            "loss": "mse",
        }
