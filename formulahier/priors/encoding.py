"""Prior specifications as JSON-able data (for saved fits) and back; nothing is pickled."""

from __future__ import annotations

from typing import Any

import bambi as bmb

from ..errors import PriorError
from .specs import PriorSpec

__all__ = ["decode_priors", "encode_priors"]


def _encode(value: Any) -> Any:
    if isinstance(value, PriorSpec):
        return {
            "__fhprior__": _encode(value.dist),
            "cls": value.cls,
            "coef": value.coef,
            "group": value.group,
        }
    if isinstance(value, bmb.Prior):
        if value.dist is not None:
            raise PriorError(
                f"The prior {value} uses a custom distribution function and cannot be saved "
                "as data; use a named PyMC distribution."
            )
        args = {k: _encode(v) for k, v in value.args.items()}
        return {"__prior__": value.name, "args": args, "auto_scale": value.auto_scale}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise PriorError(f"Cannot encode the prior component {value!r} as data.")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__fhprior__" in value:
        dist = _decode(value["__fhprior__"])
        return PriorSpec(dist, value["cls"], value.get("coef"), value.get("group"))
    if isinstance(value, dict) and "__prior__" in value:
        args = {k: _decode(v) for k, v in value["args"].items()}
        return bmb.Prior(value["__prior__"], auto_scale=value.get("auto_scale", True), **args)
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode_priors(priors: Any) -> Any:
    """Encode a prior specification as JSON-able data.

    ``None``, a Bambi-style dict, a :class:`PriorSpec` or a list of them.
    """
    return _encode(priors)


def decode_priors(data: Any) -> Any:
    """Inverse of :func:`encode_priors`."""
    return _decode(data)
