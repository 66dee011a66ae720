"""A disk cache of compiled PyTensor functions, so that a new process skips graph rewriting.

PyTensor caches what numba and the C compiler produce, but not the rewritten graph: every new
process rewrites the log-density and its gradient again (1-3 s for a small model, pure Python).
:func:`cached_compile` keys a compiled function on a hash of the graph it is asked to compile
and keeps the compiled :class:`pytensor.compile.Function` (rewritten graph and all) in the
user's cache directory; a later process with the same graph loads it instead.

Safety:

* **The key is the graph.** Every node's Op (its type and every ``__props__`` value, the
  properties PyTensor itself uses to decide that two Ops are the same), every variable's type
  (dtype and static shape), the wiring, every constant's bytes and every shared variable's
  name, type and value (the data), plus the versions of Python, NumPy, PyTensor, PyMC, numba
  and formulahier and the PyTensor settings that change compilation. An Op without
  ``__props__``, or anything else the hash cannot describe, means no caching for that graph.
* **Only the user's own files are read**: the directory is ``$FORMULAHIER_CACHE_DIR`` if set,
  else ``$XDG_CACHE_HOME/formulahier/compiled`` (``~/.cache/formulahier/compiled``), created
  with permissions 0700. A cache entry is a pickle, i.e. code, written by the user's own
  process: the same trust as PyTensor's own compile cache (compiled modules in ``~/.pytensor``
  that every PyTensor process loads). Never point the variable at a directory others can write.
* **Any failure means a plain compile**: a missing, truncated or incompatible entry, a load
  error, a loaded object of the wrong kind. ``FORMULAHIER_COMPILE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_dir", "cached_compile", "graph_key"]

MAX_BYTES = 200 * 2**20  # a larger function (data held as shared values) is not stored


class _Undescribed(Exception):  # noqa: N818 - internal: the hash cannot describe a graph
    """A graph part the key cannot describe (caught: that graph is compiled, not cached)."""


def cache_dir() -> Path | None:
    """Where compiled functions are kept; ``None`` when the cache is turned off."""
    if os.environ.get("FORMULAHIER_COMPILE_CACHE", "1").lower() in ("0", "false", "off", "no"):
        return None
    root = os.environ.get("FORMULAHIER_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "formulahier" / "compiled"


def _environment() -> str:
    import numba
    import pymc
    import pytensor

    from .about import __version__

    config = pytensor.config
    flags = ("floatX", "mode", "linker", "optimizer", "optimizer_excluding",
             "optimizer_including", "optimizer_requiring", "numba__fastmath", "cxx",
             "blas__ldflags")  # fmt: skip
    settings = [(f, str(getattr(config, f, None))) for f in flags]
    return repr(
        (sys.version, np.__version__, pytensor.__version__, pymc.__version__,
         numba.__version__, __version__, settings)
    )  # fmt: skip


def _array_key(value) -> str:
    array = np.ascontiguousarray(value)
    if array.dtype == object:
        raise _Undescribed("object array")
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    return f"{array.dtype.str}{array.shape}{digest}"


def _op_key(op) -> str:
    """Type and ``__props__`` of an Op; an OpFromGraph by its inner graph (what it computes)."""
    from pytensor.compile.builders import OpFromGraph

    props = getattr(op, "__props__", None)
    if props is None and type(op) is OpFromGraph:
        inner = _describe(op.inner_inputs, op.inner_outputs)
        return hashlib.sha256(repr(("OpFromGraph", inner)).encode()).hexdigest()
    if props is None:
        raise _Undescribed(f"{type(op).__name__} has no __props__")
    values = tuple((p, getattr(op, p)) for p in props)
    blob = pickle.dumps((type(op).__module__, type(op).__qualname__, values), protocol=4)
    return hashlib.sha256(blob).hexdigest()


def _describe(inputs, outputs) -> list[str]:
    """Every node of the graph as text: its Op's key, its inputs' and outputs' names and types."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    names: dict[Any, str] = {v: f"in{i}:{v.type}" for i, v in enumerate(inputs)}

    def name_of(var) -> str:
        if var in names:
            return names[var]
        if isinstance(var, Constant):
            return f"const:{var.type}:{_array_key(var.data)}"
        if isinstance(var, SharedVariable):
            value = var.get_value(borrow=True)
            return f"shared:{var.name}:{var.type}:{_array_key(value)}"
        raise _Undescribed(f"free variable {var} is not an input")

    parts = []
    for n, node in enumerate(io_toposort(list(inputs), list(outputs))):
        ins = [name_of(v) for v in node.inputs]
        parts.append(repr((_op_key(node.op), ins, [str(o.type) for o in node.outputs])))
        names.update({o: f"n{n}.{k}:{o.type}" for k, o in enumerate(node.outputs)})
    parts.append(repr([name_of(v) for v in outputs]))
    return parts


def graph_key(inputs, outputs, tag: str = "") -> str | None:
    """A hash of the graph from ``inputs`` to ``outputs``, ``tag`` and the environment, or None."""
    try:
        parts = [_environment(), tag, *_describe(inputs, outputs)]
    except Exception:  # noqa: BLE001 - a graph the hash cannot describe is not cached
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _load(path: Path):
    try:
        with path.open("rb") as stream:
            return pickle.load(stream)  # noqa: S301 - the user's own cache (module docstring)
    except Exception:  # noqa: BLE001 - any failure: compile instead
        return None


def _store(path: Path, value) -> None:
    try:
        import cloudpickle  # type: ignore[import-untyped]  # PyMC's dependency, for closures

        blob = cloudpickle.dumps(value)
        if len(blob) > MAX_BYTES:
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(blob)
        os.replace(tmp.name, path)
    except Exception:  # noqa: BLE001 - a cache that cannot be written is no cache
        return


def cached_compile(inputs, outputs, compile_fn, tag: str = ""):
    """``compile_fn()``, a PyTensor Function of ``inputs``, cached on disk.

    The key is the graph ``inputs`` -> ``outputs`` with ``tag``: ``compile_fn`` must compile
    these outputs, or what ``tag`` names as derived from them alone (``"value_and_grad"``: the
    outputs and their gradient), so that the graph is only built in full when it is compiled.
    """
    from pytensor.compile import Function

    root = cache_dir()
    key = graph_key(inputs, outputs, tag) if root is not None else None
    if root is None or key is None:
        return compile_fn()
    path = root / f"{key}.pkl"
    if path.exists():
        loaded = _load(path)
        types = [str(v.type) for v in inputs]
        if isinstance(loaded, Function) and [
            str(i.variable.type) for i in loaded.maker.inputs
        ] == types:
            return loaded
    compiled = compile_fn()
    _store(path, compiled)
    return compiled
