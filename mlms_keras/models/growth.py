"""Models that grow with their feature layout, and input rows that start at zero (issue 14, item 3).

**Growing.** `FeatureLayout.add_language` appends the new language's phoneme-identity features to the phoneme-level
layout (`layout.feature_names`, D_phone dims). The two models see them at different places:

- the duration model's input is a phoneme vector, `layout.feature_names`: the new dims come at the end;
- the acoustic model's input is a frame vector, `layout.frame_feature_names` = the phoneme features followed by the
  4 frame features (3 coarse-coded positions + 1 duration): the new dims come *before* the 4 frame features.

So everything here maps by feature name, never by position: row `n` of a grown input-side weight is the old row `n`
when the old layout had feature `n`, and zero otherwise. `grow_model_inputs(model, old_names, new_names)` rebuilds
a model (`build_mlms_model`, which `build_duration_model` also is) with the new input dimension, its added languages
and speakers included, and copies every weight; the only weights that depend on the input dimension are the ReLU
projection kernels `(towers, input_dim, relu_units)` of the mean tower and of the L basis towers
(`mlms_keras.layers.tower_weights.TowerStack`), which get zero rows at the new features. An existing language has
zeros at the new features, and the new rows are zero for every language, so the outputs of every existing language
are the same after growth: bit-identical whenever the input matmul adds the products in one pass over the inputs
(a product 0 x 0 then adds an exact zero). TensorFlow's default CPU kernels (oneDNN) do so: measured bit-identical
on the paper's 8-language layout grown by a ninth language (1,193 -> 1,218 frame inputs). With oneDNN off
(`TF_ENABLE_ONEDNN_OPTS=0`, as the test suite runs), Eigen does so up to about 300 inputs; above that it adds
blocks of inputs whose bounds move with the input dimension, and outputs may differ in the last bit (6e-8 seen).
`grow_normalisation` grows the input statistics that come with the features
(mean 0, std 1 at the new features, as the identity features always have; `mlms_keras.data.manifest`).

The new language's phonemes are not left without inputs the model knows: the panphon articulatory features of the
five quinphone phonemes (`{LL,L,C,R,RR}_articulation=*`) are shared dimensions of every language, not new ones, so
an unseen phoneme lights up the same inputs as the trained phonemes that sound like it. This is the paper's
section 5 idea of IPA features for unseen phonemes, and it is why only the identity features grow.

**Zero rows for languages without training data.** A layout often covers languages the model is not trained on
(the teacher corpus's adaptation languages pl and pt-br, or languages a corpus lacks). Their own features (the
identity features of phonemes no trained language has) are zero in every training input, so their rows get a zero
gradient and, with Adam, a zero update: they would keep their random initial weights for ever, and feed that noise
into the towers when the language is adapted later with the towers frozen (variant v1).
`zero_untrained_language_inputs(model, layout, trained_languages)` sets those rows to zero when a model is built
for training; the shared features (structure, stress, articulatory, `sil`/`pau` identities and the frame
features) are never touched. Because the rows never change in training, zeroing them changes nothing in training
itself: the same losses, the same trained rows, bit for bit.

Example:

>>> grown_acoustic = grow_model_inputs(acoustic, old.frame_feature_names, new.frame_feature_names)  # doctest: +SKIP
>>> grown_duration = grow_model_inputs(duration, old.feature_names, new.feature_names)  # doctest: +SKIP
>>> mean, std = grow_normalisation(mean, std, old.frame_feature_names, new.frame_feature_names)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

from mlms_keras.models.acoustic import build_mlms_model, config_of

if TYPE_CHECKING:
    from mlms_keras.frontend.layout import FeatureLayout

__all__ = [
    "feature_positions",
    "grow_model_inputs",
    "grow_normalisation",
    "grow_rows",
    "input_kernels",
    "untrained_language_features",
    "zero_input_features",
    "zero_untrained_language_inputs",
]


def _unique(names: Iterable[str], what: str) -> tuple[str, ...]:
    names = tuple(names)
    if len(set(names)) != len(names):
        seen: set[str] = set()
        duplicates = sorted({name for name in names if name in seen or seen.add(name)})
        raise ValueError(f"{what} contain duplicates, e.g. {duplicates[:5]}")
    return names


def feature_positions(old_feature_names: Sequence[str], new_feature_names: Sequence[str]) -> np.ndarray:
    """Where each old feature is in the new layout.

    Args:
        old_feature_names: `(D_old,)` names of the old inputs (e.g. `old_layout.frame_feature_names`).
        new_feature_names: `(D_new,)` names of the new inputs; must contain every old name.

    Returns:
        `(D_old,)` int64: entry i is the new index of `old_feature_names[i]`.

    Raises:
        ValueError: the new names lack some old ones (the message names them and counts them), or either list
            has duplicates.
    """
    old = _unique(old_feature_names, "old_feature_names")
    new_index = {name: index for index, name in enumerate(_unique(new_feature_names, "new_feature_names"))}
    missing = [name for name in old if name not in new_index]
    if missing:
        raise ValueError(
            f"The new feature layout does not contain the old one: {len(missing)} old features are missing, "
            f"e.g. {missing[:5]}. Grow a layout with FeatureLayout.add_language, which keeps every old feature, "
            "and pass the matching names (feature_names for phoneme inputs, frame_feature_names for frame inputs)."
        )
    return np.asarray([new_index[name] for name in old], np.int64)


def grow_rows(
    array: np.ndarray,
    old_feature_names: Sequence[str],
    new_feature_names: Sequence[str],
    fill: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """An array over the old features, spread over the new features by name.

    Args:
        array: `(..., D_old, ...)` with the features on `axis`.
        old_feature_names, new_feature_names: as in `feature_positions`.
        fill: the value at the new features.
        axis: the feature axis of `array`.

    Returns:
        `(..., D_new, ...)` of `array`'s dtype: `array`'s value for an old feature, `fill` for a new one.
    """
    array = np.asarray(array)
    positions = feature_positions(old_feature_names, new_feature_names)
    axis = axis % array.ndim
    if array.shape[axis] != len(positions):
        raise ValueError(
            f"array has {array.shape[axis]} features on axis {axis} (shape {array.shape}), but "
            f"old_feature_names has {len(positions)}"
        )
    shape = list(array.shape)
    shape[axis] = len(new_feature_names)
    grown = np.full(shape, fill, dtype=array.dtype)
    index = [slice(None)] * array.ndim
    index[axis] = positions
    grown[tuple(index)] = array
    return grown


def grow_normalisation(
    mean: np.ndarray, std: np.ndarray, old_feature_names: Sequence[str], new_feature_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Input normalisation statistics of the old features, grown to the new ones: mean 0 and std 1 there.

    The new features are phoneme identities (one-hot, left unnormalised in `mlms_keras.data.manifest`), so mean 0
    and std 1 keep them 0/1 and keep a new language's zero padding at exactly zero.

    Args:
        mean, std: `(D_old,)` the input statistics (`(x - mean) / std`).
        old_feature_names, new_feature_names: as in `feature_positions`.

    Returns:
        `(mean, std)`: two `(D_new,)` arrays of the input dtypes.
    """
    return (
        grow_rows(mean, old_feature_names, new_feature_names, fill=0.0),
        grow_rows(std, old_feature_names, new_feature_names, fill=1.0),
    )


def input_kernels(model: keras.Model) -> list[keras.Variable]:
    """The input-side weights of every tower: the ReLU projection kernels `(towers, input_dim, relu_units)`.

    One per tower stack: the mean tower's `(1, D, relu_units)`, then, when L > 0, the basis towers'
    `(L, D, relu_units)`; together the L+1 towers of `ClusterAdaptiveTowers`.
    """
    towers = model.get_layer("towers")
    stacks = [towers.mean_tower] + ([towers.basis_towers] if towers.basis_towers is not None else [])
    return [stack.relu_kernel for stack in stacks]


def _input_dim(model: keras.Model) -> int:
    return int(model.get_layer("towers").input_dim)


def _check_names(model: keras.Model, feature_names: Sequence[str], what: str) -> tuple[str, ...]:
    names = _unique(feature_names, what)
    if len(names) != _input_dim(model):
        raise ValueError(
            f"{what} has {len(names)} names but the model {model.name!r} has input_dim {_input_dim(model)}; pass "
            "the names of its inputs (layout.feature_names for a duration model, layout.frame_feature_names for an "
            "acoustic model)"
        )
    return names


def grow_model_inputs(
    model: keras.Model, old_feature_names: Sequence[str], new_feature_names: Sequence[str]
) -> keras.Model:
    """A copy of `model` whose inputs are the new features, with the same outputs for the old languages.

    The copy is built with `build_mlms_model` from `config_of(model)` with the new `input_dim`, then grown by
    the languages `model` had added (`add_language`, so the codes keep their trainability and the config its
    `added_languages`); it has the same name, streaming mode and XLA mode, and every weight of `model`. The
    tower input kernels (`input_kernels`) get zero rows at the new features, placed by name: a frame model's new
    features sit before the 4 frame features. Old languages' outputs are bit-identical where the input matmul
    sums in one pass (see the module docstring). Layers frozen with `trainable = False` are not frozen in the copy:
    the adaptation variants set their freezing themselves.

    Args:
        model: an acoustic model (`build_mlms_model`) or a duration model (`build_duration_model`), possibly
            adapted (added languages and speakers).
        old_feature_names: `(input_dim,)` the names of `model`'s inputs.
        new_feature_names: `(D_new,)` the names of the new inputs; a superset of the old ones, in any order.

    Returns:
        A new, uncompiled `keras.Model` with input `linguistic (batch, frames, D_new)`; `model` is unchanged.
        Compile it before training. Feed it inputs whose old features are as before and whose new features are
        zero for the old languages (a grown layout does exactly that); normalise them with `grow_normalisation`.

    Raises:
        ValueError: the names do not match `model`'s input dimension, or the new names lack old ones.
    """
    old = _check_names(model, old_feature_names, "old_feature_names")
    new = _unique(new_feature_names, "new_feature_names")
    positions = feature_positions(old, new)
    towers = model.get_layer("towers")
    config = dataclasses.replace(
        config_of(model), input_dim=len(new), num_languages=towers.num_languages - towers.added_languages
    )
    batch_size = model.get_layer("linguistic").batch_shape[0] if towers.stateful else None
    grown = build_mlms_model(
        config,
        stateful=towers.stateful,
        batch_size=batch_size,
        jit_recurrence=towers.jit_recurrence,
        name=model.name,
    )
    for _ in range(towers.added_languages):
        grown.get_layer("towers").add_language()

    old_weights, new_weights = model.weights, grown.weights
    grown_kernels = {id(kernel) for kernel in input_kernels(grown)}
    if [w.name for w in old_weights] != [w.name for w in new_weights]:
        raise ValueError(
            f"model {model.name!r} is not a model of build_mlms_model / build_duration_model: its weights "
            f"{[w.name for w in old_weights][:8]}... differ from a rebuilt one's"
        )
    for old_weight, new_weight in zip(old_weights, new_weights):
        value = old_weight.numpy()
        if id(new_weight) in grown_kernels:
            kernel = np.zeros(tuple(new_weight.shape), value.dtype)
            kernel[:, positions, :] = value
            value = kernel
        elif tuple(value.shape) != tuple(new_weight.shape):
            raise ValueError(f"weight {old_weight.path} has shape {value.shape}, its rebuilt twin {new_weight.shape}")
        new_weight.assign(value)
    return grown


def untrained_language_features(layout: FeatureLayout, trained_languages: Iterable[str]) -> tuple[str, ...]:
    """The phoneme-level features that only languages without training data use, in layout order.

    A feature is listed when some layout language outside `trained_languages` uses it and no trained language
    does: in practice the identity features (`LL_phoneme=x` ... `RR_phoneme=x`) of phonemes no trained language
    has. Features every language has (structure, stress, articulatory, the `sil`/`pau` identities) are never
    listed, nor are the frame features (they are not phoneme-level).

    Args:
        layout: the `FeatureLayout` of the model's inputs.
        trained_languages: codes of the languages the model is trained on; each must be in `layout`.

    Returns:
        The feature names (empty when every layout language is trained).
    """
    trained = list(dict.fromkeys(trained_languages))
    unknown = [code for code in trained if code not in layout.languages]
    if unknown:
        raise ValueError(f"trained languages {unknown} are not in the feature layout (languages: {layout.languages})")
    used_by_trained = np.zeros(layout.dimension, bool)
    for code in trained:
        used_by_trained |= layout.language_mask(code)
    used_by_untrained = np.zeros(layout.dimension, bool)
    for code in layout.languages:
        if code not in trained:
            used_by_untrained |= layout.language_mask(code)
    only_untrained = used_by_untrained & ~used_by_trained
    return tuple(name for name, flag in zip(layout.feature_names, only_untrained) if flag)


def zero_input_features(model: keras.Model, feature_names: Sequence[str], zeroed: Iterable[str]) -> np.ndarray:
    """Sets the rows of the given features to zero in every tower's input kernel (`input_kernels`), in place.

    Args:
        model: an acoustic or duration model.
        feature_names: `(input_dim,)` the names of `model`'s inputs.
        zeroed: names of the features whose rows become zero; each must be in `feature_names`.

    Returns:
        The zeroed input indices, int64, ascending.
    """
    names = _check_names(model, feature_names, "feature_names")
    index = {name: position for position, name in enumerate(names)}
    zeroed = list(dict.fromkeys(zeroed))
    missing = [name for name in zeroed if name not in index]
    if missing:
        raise ValueError(f"features {missing[:5]} are not inputs of model {model.name!r}")
    rows = np.asarray(sorted(index[name] for name in zeroed), np.int64)
    if rows.size:
        for kernel in input_kernels(model):
            value = kernel.numpy()
            value[:, rows, :] = 0.0
            kernel.assign(value)
    return rows


def zero_untrained_language_inputs(
    model: keras.Model, layout: FeatureLayout, trained_languages: Iterable[str]
) -> tuple[str, ...]:
    """Zeroes the tower input rows of the features that only languages without training data use, in place.

    Call it right after building a model for training and before the first epoch; the rows then stay zero
    through training (the inputs there are always zero, so gradient and Adam update are zero), and a resumed
    run, which restores its weights from the backup, has them zero as well.

    Args:
        model: an acoustic model (inputs `layout.frame_feature_names`) or a duration model (inputs
            `layout.feature_names`); which one is told by its input dimension.
        layout: the `FeatureLayout` of the model's inputs.
        trained_languages: codes of the languages the model is trained on.

    Returns:
        The zeroed feature names (`untrained_language_features`).
    """
    input_dim = _input_dim(model)
    if input_dim == layout.frame_dimension:
        names = layout.frame_feature_names
    elif input_dim == layout.dimension:
        names = layout.feature_names
    else:
        raise ValueError(
            f"model {model.name!r} has input_dim {input_dim}, but the feature layout {layout.fingerprint} gives "
            f"{layout.dimension} phoneme features and {layout.frame_dimension} frame features"
        )
    zeroed = untrained_language_features(layout, trained_languages)
    zero_input_features(model, names, zeroed)
    return zeroed
