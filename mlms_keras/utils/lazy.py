"""Lazy package attributes: public names imported from their home modules on first use.

A package's `__init__.py` that re-exports names of heavy modules (TensorFlow, Keras, KerasTuner) would load them on
`import package`. With `__getattr__, __dir__ = lazy_exports(__name__, HOMES)` (PEP 562) each name is imported when
first used, and `import package` stays light.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: dict[str, str]):
    """The module-level `__getattr__` and `__dir__` of a package whose names live in other modules.

    Args:
        package: the package's `__name__`.
        homes: public name -> the module that defines it.

    Returns:
        `(__getattr__, __dir__)`, to assign in the package's `__init__.py`.
    """

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
