"""The one integer check: Python integers back, and a Keras-style message naming the argument and the value."""

import doctest

import numpy as np
import pytest

from mlms_keras.utils import validation
from mlms_keras.utils.validation import check_integer


@pytest.mark.parametrize(
    "value, minimum, optional, expected", [(3, 1, False, 3), (np.int64(0), 0, False, 0), (None, 1, True, None)]
)
def test_the_integer_check_returns_python_integers(value, minimum, optional, expected):
    result = check_integer("size", value, minimum, optional)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, minimum, optional, message",
    [
        (0, 1, False, "`size` must be an integer >= 1. Received: size=0"),
        (True, 0, False, "`size` must be an integer >= 0. Received: size=True"),
        (2.0, 1, False, "`size` must be an integer >= 1. Received: size=2.0"),
        ("3", 1, False, "`size` must be an integer >= 1. Received: size='3'"),
        (None, 1, False, "`size` must be an integer >= 1. Received: size=None"),
        (1, 2, True, "`size` must be an integer >= 2 or None. Received: size=1"),
    ],
)
def test_the_integer_check_names_the_argument_and_the_value(value, minimum, optional, message):
    with pytest.raises(ValueError) as raised:
        check_integer("size", value, minimum, optional)
    assert str(raised.value) == message


def test_docstring_example_runs():
    results = doctest.testmod(validation, extraglobs={"np": np})
    assert results.attempted > 0 and results.failed == 0
