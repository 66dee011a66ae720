"""The package's version, looked up once (``formulahier.__version__``, saved fits, the CLI)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

__all__ = ["__version__"]

try:
    __version__: str = _distribution_version("formulahier")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
