"""Bambi's plotting imports, deferred until something uses them.

``import bambi`` runs ``from bambi import interpret`` (whose ``effects`` module imports all of
ArviZ: arviz-stats, arviz-plots, matplotlib's pyplot, seaborn's objects) and
``bambi/models.py`` runs ``from arviz_plots import plot_dist`` (arviz-plots imports pyplot to
register its styles), and nutpie's ``sample`` module runs ``import arviz`` for two functions of
arviz-base. A fit uses none of the plotting; together these imports were about a third of the
first ``fh.fit``'s, and every module loaded also costs time when the interpreter exits
(docs/performance.md).

:func:`defer_plotting_imports`, run before Bambi is first imported, puts a *deferred* module
into ``sys.modules`` for each module of :data:`DEFERRED`: a real module object made from the
module's own import spec (``__spec__``, ``__file__``, ``__path__`` set, so importers and
``inspect`` see an ordinary module) whose code runs, into that same object, the first time an
attribute it does not yet have is asked for (``bmb.interpret.comparisons``,
``azp.plot_forest``, ``from arviz_plots import plot_forest``). The names other packages import
or call while a model is fitted are bound to forwarders: ``plot_dist`` (Bambi's ``from
arviz_plots import plot_dist``) loads arviz-plots on its first call; ``arviz.from_dict`` and
``arviz.dict_to_dataset`` (nutpie) call arviz-base's functions of that name, which are the ones
``arviz`` exposes (``from arviz_base import *``). Once a module has run, its own names replace
the forwarders.

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
from collections.abc import Callable
from typing import Any

__all__ = ["DEFERRED", "defer_plotting_imports", "is_deferred"]

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
    """A module whose code runs when an attribute it does not have is first asked for."""

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not (yet) in the module's namespace
        _load(self)
        return getattr(self, name)


def _load(module: types.ModuleType) -> None:
    with _LOCK:
        if type(module) is not _Deferred:  # loaded meanwhile (another thread, a recursion)
            return
        # ordinary attribute errors while it executes
        module.__class__ = types.ModuleType  # type: ignore[assignment]
        try:
            module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            module.__class__ = _Deferred  # the next use tries again and raises again
            raise


def _forwarder(module: types.ModuleType, name: str, source: str) -> Callable[..., Any]:
    """A function calling ``source.name``: the deferred ``module``'s own (loading it first)."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        if source == module.__name__:
            _load(module)
            return getattr(module, name)(*args, **kwargs)
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


def defer_plotting_imports() -> None:
    """Put the deferred modules of :data:`DEFERRED` into ``sys.modules`` (before Bambi).

    Does nothing once Bambi is imported (the modules are then loaded already) and nothing for
    a module that is imported already or not installed.
    """
    if "bambi" in sys.modules:
        return
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
                setattr(module, attribute, _forwarder(module, attribute, source))
            sys.modules[name] = module


def is_deferred(name: str) -> bool:
    """Whether ``sys.modules[name]`` is a deferred module whose code has not run yet."""
    return type(sys.modules.get(name)) is _Deferred
