"""The one integer-argument check (sizes, counts, epochs) of the layers, the model builders, the option
dataclasses and the tuning code, with Keras's "Received: name=value" message style. No TensorFlow."""

from __future__ import annotations

import numpy as np

__all__ = ["check_integer"]


def check_integer(name: str, value: object, minimum: int = 1, optional: bool = False) -> int | None:
    """Returns `value` as a Python `int` after checking that it is an integer `>= minimum`.

    Python and numpy integers pass; booleans, floats and strings do not.

    Args:
        name: the argument's name, for the message.
        value: the value received.
        minimum: the smallest value allowed.
        optional: also allow `None` (returned as is).

    Returns:
        `int(value)`, or `None` when `optional` and `value is None`.

    Raises:
        ValueError: naming the argument and the value, e.g.
            "`units` must be an integer >= 1. Received: units=0".

    Example:
    >>> check_integer("units", np.int64(16))
    16
    """
    if optional and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}")
    return int(value)
