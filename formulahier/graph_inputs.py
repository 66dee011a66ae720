"""The data's numbers in a log-density graph, moved from constants to one shared input.

PyTensor's numba linker caches a compiled graph on disk under a key that hashes every constant
of the graph. A model's graph holds as constants numbers derived from its data: the prior means
and scales Bambi sets from the response and the predictors, and the small matrices of the
collapsed likelihood's basis (centring and scaling of the group-level predictors). So the same
formula on new data (even the response shifted by 0.01) missed the cache and numba compiled the
whole log-density again, about 17 s for sleepstudy.

:func:`lift_constants` replaces those constants, before PyTensor rewrites the graph, by slices
of one shared float64 vector that holds their values. The compiled code and its cache key then
depend on the graph's structure only, and the function reads the values at every call like the
model's other shared data. Constants that rewrites rely on (0, +-1, +-0.5, 2, ..., the
infinities that a log-density's bounds return) and every integer constant (shapes, indices,
axes) stay as they are.

The data's sizes are in the graph as well: the collapsed model's cross-products are shared
variables of fixed shape (one row per level), and PyTensor's rewrites turn their static shapes
into constants. :func:`free_shapes` reads each such variable through an alias of the same
storage whose type leaves the sizes open, so a data set with another number of levels (or
rows) compiles to the same code. Dimensions of length 1 stay fixed: they broadcast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["STRUCTURAL", "free_shapes", "lift_constants"]

#: scalar float constants kept in the graph: rewrites match them (x * 1, x + 0, x ** 2,
#: x ** 0.5, 1 - x, log(1 + x), switch(..., -inf), ...), and they are the same for every data set
STRUCTURAL = frozenset({0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0})

#: name of the shared vector that holds the lifted values
NAME = "_lifted_constants"


def _lifts(constant) -> bool:
    """Whether ``constant`` is a data-dependent float constant (one to move into the input)."""
    from pytensor.tensor.variable import TensorConstant

    if not isinstance(constant, TensorConstant) or constant.dtype not in ("float32", "float64"):
        return False
    data = np.asarray(constant.data)
    if data.ndim == 0:
        value = float(data)
        return bool(np.isfinite(value)) and value not in STRUCTURAL
    return data.size > 0


def lift_constants(outputs: Sequence) -> tuple[list, object | None]:
    """``outputs`` with their data-dependent float constants read from one shared vector.

    Returns the new outputs and the shared vector (``None`` when nothing was lifted). The
    vector's layout follows the graph's structure (the order in which the constants are met),
    so two data sets of the same structure give the same graph with other values in the vector.
    The values are exactly the constants' (float32 ones are stored in float64 and cast back).
    """
    import pytensor
    from pytensor.graph.basic import Constant
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import ancestors

    constants = []
    seen = set()
    for var in ancestors(list(outputs)):
        if isinstance(var, Constant) and id(var) not in seen and _lifts(var):
            seen.add(id(var))
            constants.append(var)
    if not constants:
        return list(outputs), None
    values = [np.asarray(c.data, dtype="float64").ravel() for c in constants]
    vector = pytensor.shared(np.concatenate(values), name=NAME, shape=(None,))
    replace = {}
    offset = 0
    for c, v in zip(constants, values, strict=True):
        piece = vector[offset] if c.ndim == 0 else vector[offset : offset + v.size]
        piece = piece.reshape(c.type.shape) if c.ndim > 0 else piece
        replace[c] = piece.astype(c.dtype) if c.dtype != "float64" else piece
        offset += v.size
    return list(clone_replace(list(outputs), replace)), vector


def free_shapes(outputs: Sequence) -> list:
    """``outputs`` reading their shared variables through aliases with the sizes left open.

    Each shared tensor variable of static shape is replaced by a shared variable over the same
    container (``set_value`` on the model's variable is what the compiled function reads)
    whose type keeps only the dimensions of length 1. The graph is rebuilt from there, so the
    shapes downstream are worked out at run time instead of being folded into constants.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.type import TensorType

    replace = {}
    for var in ancestors(list(outputs)):
        if not isinstance(var, SharedVariable) or not isinstance(var.type, TensorType):
            continue
        shape = tuple(1 if n == 1 else None for n in var.type.shape)
        if shape == var.type.shape:
            continue
        alias_type = TensorType(var.type.dtype, shape=shape)
        replace[var] = type(var)(
            type=alias_type, value=None, strict=None, container=var.container, name=var.name
        )
    if not replace:
        return list(outputs)
    return list(clone_replace(list(outputs), replace, rebuild_strict=False))
