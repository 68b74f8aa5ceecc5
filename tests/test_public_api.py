"""The top-level API: every name resolves to the object of its home module, and importing it is light."""

import importlib
import subprocess
import sys

import pytest

import mlms_keras


@pytest.mark.parametrize("name", sorted(mlms_keras._HOMES))
def test_top_level_name_is_the_object_of_its_home_module(name):
    home = importlib.import_module(mlms_keras._HOMES[name])
    assert getattr(mlms_keras, name) is getattr(home, name)
    assert name in mlms_keras.__all__ and name in dir(mlms_keras)


def test_unknown_top_level_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        mlms_keras.no_such_name  # noqa: B018


def test_importing_the_package_does_not_load_tensorflow():
    code = "import sys, mlms_keras; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_version_has_one_source():
    from importlib.metadata import version

    assert version("mlms-keras") == mlms_keras.__version__
