"""Point PyTensor's C code at the OpenBLAS of the ``scipy-openblas32`` wheel.

A plain ``pip install`` of PyTensor finds no BLAS library to link its C operations against
(conda installs one): it warns "could not link to a BLAS installation ... severely degraded" and
its C matrix products fall back on slow loops. formulahier depends on ``scipy-openblas32``, the
OpenBLAS build that SciPy and NumPy ship, and before PyTensor first looks for a BLAS it sets
``pytensor.config.blas__ldflags`` to link that library. Its routines carry a ``scipy_`` prefix
(``scipy_dgemm_``), so the flags also rename the few routines PyTensor's C code calls.

Nothing is changed when the user has set ``blas__ldflags`` (``PYTENSOR_FLAGS`` or
``.pytensorrc``), when PyTensor has already chosen its BLAS in this process, or when the wheel
is missing. Measurements: docs/performance.md ("BLAS").
"""

from __future__ import annotations

import os
import sys

__all__ = ["blas_flags", "configure_blas"]

# the Fortran BLAS routines PyTensor's C code calls (pytensor/tensor/blas/...)
_ROUTINES = (
    "axpy", "copy", "dot", "gemm", "gemv", "ger", "scal", "swap", "symm", "syrk", "trmm", "trsm",
)


def blas_flags() -> str | None:
    """The ``blas__ldflags`` that link scipy-openblas32, or ``None`` where it is not installed."""
    if sys.platform not in ("linux", "darwin"):
        return None
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return None
    lib_dir = sob.get_lib_dir()
    try:
        name = sob.get_library()
    except (OSError, IndexError):
        return None
    prefix = "scipy_"
    renames = [f"-D{t}{r}_={prefix}{t}{r}_" for r in _ROUTINES for t in "ds"]
    return " ".join([f"-L{lib_dir}", f"-l{name}", f"-Wl,-rpath,{lib_dir}", *renames])


def configure_blas() -> str | None:
    """Set PyTensor's ``blas__ldflags`` to scipy-openblas32 unless it is set already.

    Returns the flags set, or ``None`` when nothing was changed.
    """
    import pytensor

    config = pytensor.config
    try:
        config.fetch_val_for_key("blas__ldflags")
        return None  # the user's PYTENSOR_FLAGS / .pytensorrc setting wins
    except KeyError:
        pass
    param = getattr(type(config), "blas__ldflags", None)
    if param is None or hasattr(param, "val") or os.environ.get("FORMULAHIER_SYSTEM_BLAS"):
        return None  # already chosen in this process (or asked to leave it to PyTensor)
    flags = blas_flags()
    if flags is not None:
        config.blas__ldflags = flags
    return flags
