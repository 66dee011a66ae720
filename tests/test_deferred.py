"""Bambi's plotting imports are deferred until used (formulahier/backend/seam/deferred.py)."""

from __future__ import annotations

import subprocess
import sys

# run in a fresh interpreter: the test process has imported the plotting modules long ago
_CODE = """
import sys
import formulahier as fh
import formulahier.api
from formulahier.backend.seam.deferred import DEFERRED, is_deferred

model = fh.model("Reaction ~ Days + (Days | Subject)", fh.datasets.load("sleepstudy"))
model.build()
import nutpie.compiled_pyfunc  # imports arviz, for two functions of arviz-base
assert all(is_deferred(name) for name in DEFERRED), [n for n in DEFERRED if not is_deferred(n)]
assert "matplotlib.pyplot" not in sys.modules and "seaborn" not in sys.modules

import arviz
import arviz_base
import numpy as np
idata = arviz.from_dict({"posterior": {"a": np.zeros((1, 2))}})  # forwarded: loads no plotting
assert is_deferred("arviz") and "matplotlib.pyplot" not in sys.modules

import bambi
assert bambi.interpret is sys.modules["bambi.interpret"]
assert callable(bambi.interpret.comparisons) and not is_deferred("bambi.interpret")
from arviz_plots import plot_forest
assert callable(plot_forest) and not is_deferred("arviz_plots")
assert "matplotlib.pyplot" in sys.modules
assert arviz.plot_forest is plot_forest and arviz.from_dict is arviz_base.from_dict
print("ok")
"""


def test_plotting_modules_load_on_first_use():
    out = subprocess.run(
        [sys.executable, "-c", _CODE], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_a_failed_load_is_raised_again(monkeypatch):
    import importlib.machinery
    import types

    from formulahier.backend.seam import deferred

    spec = importlib.machinery.ModuleSpec("fh_test_missing", loader=None)

    class Failing:
        def exec_module(self, module):
            raise ImportError("no such thing")

    spec.loader = Failing()  # type: ignore[assignment]
    module = types.ModuleType("fh_test_missing")
    module.__spec__ = spec
    module.__class__ = deferred._Deferred
    for _ in range(2):  # not left half-loaded: the second use raises the same error
        try:
            module.anything  # noqa: B018
        except ImportError as err:
            assert "no such thing" in str(err)
        else:
            raise AssertionError("expected ImportError")
    assert deferred.is_deferred("fh_test_missing") is False  # not in sys.modules
    assert type(module) is deferred._Deferred
