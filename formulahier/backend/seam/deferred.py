"""Bambi's plotting imports, deferred until something uses them.

``import bambi`` runs ``from bambi import interpret`` (whose ``effects`` module imports all of
ArviZ: arviz-stats, arviz-plots, matplotlib's pyplot, seaborn's objects) and
``bambi/models.py`` runs ``from arviz_plots import plot_dist`` (arviz-plots imports pyplot to
register its styles), and nutpie's ``sample`` module runs ``import arviz`` for two functions of
arviz-base. A fit uses none of the plotting; together these imports were about a third of the
first ``fh.fit``'s, and every module loaded also costs time when the interpreter exits
(docs/performance.md).

:func:`deferred_imports` is a context manager around those imports (the seam's import of
Bambi, the callback route's of nutpie). Inside, ``sys.modules`` holds a *deferred* module for
each module of :data:`DEFERRED` not imported yet: a module object made from the module's own
import spec (``__spec__``, ``__file__``, ``__path__`` set, so importers and ``inspect`` see an
ordinary module), which is what ``from bambi import interpret`` or ``import arviz`` then bind.
On leaving, the deferred modules are taken out of ``sys.modules`` again, so a user's own
``import arviz_plots`` (or ``import arviz``) later imports the real package, its ``__init__``
run (arviz-plots registers its matplotlib styles there). A deferred module left bound inside
Bambi or nutpie stands in for the real one: the first attribute it does not have
(``bmb.interpret.comparisons``) imports the real module and is read from it, as is every later
one; ``dir()`` lists the real module's names. The names other packages call while a model is
fitted are forwarders: ``plot_dist`` (Bambi's ``from arviz_plots import plot_dist``) imports
arviz-plots on its first call; ``arviz.from_dict`` and ``arviz.dict_to_dataset`` (nutpie)
call arviz-base's functions of that name, which are the ones ``arviz`` exposes (``from
arviz_base import *``).

The standard library's :class:`importlib.util.LazyLoader` was measured first and does not
work here: its module loads on *any* attribute access, ``__spec__`` and ``__file__`` included,
and the import system reads ``__spec__`` of every module named in an import statement while
``inspect.getmodule`` (run by ``lazy_loader`` when arviz-base is imported) reads ``__file__``
of every module in ``sys.modules``; the deferred modules were loaded during Bambi's own import.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["DEFERRED", "deferred_imports", "is_deferred"]

#: module -> {name: module whose ``name`` a forwarder calls}: the names other packages take
#: from the module while a model is built and fitted (``from arviz_plots import plot_dist`` in
#: Bambi, ``arviz.from_dict(...)`` in nutpie), so that using them loads no plotting
DEFERRED: dict[str, dict[str, str]] = {
    "bambi.interpret": {},
    "arviz_plots": {"plot_dist": "arviz_plots"},
    "arviz": {"from_dict": "arviz_base", "dict_to_dataset": "arviz_base"},
}

_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in for a module not imported yet; its first missing attribute imports it."""

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not in the stand-in's own namespace
        return getattr(_real(self), name)

    def __dir__(self) -> list[str]:
        return dir(_real(self))


def _real(module: types.ModuleType) -> types.ModuleType:
    """The real module ``module`` stands in for, imported now if it is not yet."""
    with _LOCK:
        name = module.__name__
        if sys.modules.get(name) is module:  # used inside deferred_imports(): import it now
            del sys.modules[name]
        return importlib.import_module(name)


def _forwarder(name: str, source: str) -> Callable[..., Any]:
    """A function calling ``source.name``, importing ``source`` on the first call."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(source), name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{source}.{name}``, imported on the first call."
    return forward


def _spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """The import spec of ``name`` without importing its package (its ``__init__`` not run)."""
    parent, _, _ = name.rpartition(".")
    if not parent:
        return importlib.util.find_spec(name)
    parent_spec = importlib.util.find_spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, parent_spec.submodule_search_locations)


@contextmanager
def deferred_imports() -> Iterator[None]:
    """Inside, the modules of :data:`DEFERRED` not imported yet are deferred stand-ins.

    Nothing is deferred for a module that is imported already or not installed. On leaving,
    the stand-ins still in ``sys.modules`` are taken out, so later imports get real modules.
    """
    placed: list[tuple[str, types.ModuleType]] = []
    with _LOCK:
        for name, forwarded in DEFERRED.items():
            if name in sys.modules:
                continue
            spec = _spec(name)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            module.__class__ = _Deferred
            for attribute, source in forwarded.items():
                setattr(module, attribute, _forwarder(attribute, source))
            sys.modules[name] = module
            placed.append((name, module))
    try:
        yield
    finally:
        with _LOCK:
            for name, module in placed:
                if sys.modules.get(name) is module:
                    del sys.modules[name]


def is_deferred(module: object) -> bool:
    """Whether ``module`` is a stand-in whose real module has not been asked for."""
    return type(module) is _Deferred
