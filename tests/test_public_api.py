"""The public surface: ``shallot.__all__`` and each public module's ``__all__`` list exactly
the names without an underscore (STYLE.md, "Layout is the architecture")."""

from __future__ import annotations
import __future__

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import shallot


def public_modules() -> list[str]:
    """Every module of the package whose dotted path has no part starting with ``_``."""
    names = [shallot.__name__]
    for info in pkgutil.walk_packages(shallot.__path__, prefix="shallot."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def defined_public_names(module: ModuleType) -> set[str]:
    """The public functions and classes a module holds that shallot defines: in the module
    itself or, for a package, in one of its submodules (its re-exports)."""
    prefix = f"{module.__name__}." if hasattr(module, "__path__") else module.__name__
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and (value.__module__ == module.__name__ or value.__module__.startswith(prefix))
    }


def reexported_names(package: ModuleType) -> set[str]:
    """Every name the top-level package holds that is not a submodule or a ``__future__``
    feature: ``shallot/__init__.py`` holds the public API and nothing else."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, (ModuleType, __future__._Feature))
    }


def test_the_package_exports_exactly_its_public_names() -> None:
    assert sorted(shallot.__all__) == sorted(reexported_names(shallot))


def test_the_packages_all_has_no_repeats() -> None:
    assert len(shallot.__all__) == len(set(shallot.__all__))


def test_the_package_exports_the_core_api() -> None:
    core = {
        "ASGIProtocolError",
        "ShallotError",
        "WSDisconnect",
        "apply_middleware",
        "build_server",
        "standard_disconnect",
        "standard_not_found",
        "ws_accept",
        "ws_close",
        "ws_send",
    }
    assert core <= set(shallot.__all__)


@pytest.mark.parametrize("name", public_modules())
def test_public_module_all_lists_what_it_defines_and_nothing_missing(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ lists names it does not have"
    unlisted = defined_public_names(module) - set(exported)
    assert unlisted == set(), f"{name} defines public names not in __all__"
    private = [item for item in exported if item.startswith("_")]
    assert private == []


def documentable(value: object) -> bool:
    """Functions and classes carry docstrings; type aliases (``shallot.types``) cannot, and
    are documented by the ``#:`` comment above them."""
    return inspect.isfunction(value) or inspect.isclass(value)


def test_public_functions_are_documented() -> None:
    undocumented = [
        f"{name}.{item}"
        for name in public_modules()
        for item in importlib.import_module(name).__all__
        if documentable(value := getattr(importlib.import_module(name), item))
        and not inspect.getdoc(value)
    ]
    assert undocumented == []


def test_the_types_module_names_what_an_app_annotates() -> None:
    import shallot.types

    wanted = {"Request", "Response", "Handler", "WSHandler", "Middleware", "Hook", "Message"}
    assert wanted <= set(shallot.types.__all__)
    assert shallot.types.Receiver is shallot.Receiver
