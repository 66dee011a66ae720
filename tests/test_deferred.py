"""Bambi's plotting imports are deferred until used (formulahier/backend/seam/deferred.py); the
library leaves the garbage collector alone, the command line freezes what it imported (cli.py)."""

from __future__ import annotations

import subprocess
import sys

# run in a fresh interpreter: the test process has imported the plotting modules long ago
_CODE = """
import gc
import sys
import weakref

frozen = gc.get_freeze_count()  # what the interpreter's start-up froze (a few hundred)
import formulahier as fh

fh.model  # the first use of a name that needs the backend imports it
import formulahier.api
assert gc.get_freeze_count() == frozen  # a library import must not freeze its caller's objects
from formulahier.cli import _own_process

_own_process()  # what the command line does after its import
assert gc.get_freeze_count() > frozen + 50_000  # the imported modules' objects: no collection walks them


class Node:
    pass


cycle = Node()
cycle.me = cycle  # made after the freeze: the collector reclaims it as ever
cycle_ref = weakref.ref(cycle)
del cycle
gc.collect()
assert cycle_ref() is None
from formulahier.backend.seam.deferred import DEFERRED, is_deferred
from formulahier.callback_nuts import import_nutpie

model = fh.model("Reaction ~ Days + (Days | Subject)", fh.datasets.load("sleepstudy"))
model.build()
import_nutpie()  # nutpie imports arviz, for two functions of arviz-base
plotting = ("matplotlib.pyplot", "seaborn", "arviz_plots", "arviz", "bambi.interpret")
assert not [m for m in plotting if m in sys.modules], [m for m in plotting if m in sys.modules]
import bambi
stand_in = sys.modules["nutpie.sample"].arviz
assert is_deferred(bambi.interpret) and is_deferred(stand_in)

import numpy as np
idata = stand_in.from_dict({"posterior": {"a": np.zeros((1, 2))}})  # forwarded to arviz-base
assert "arviz" not in sys.modules and "matplotlib.pyplot" not in sys.modules

# what the user imports later is the real package, its __init__ run
import arviz_plots
import matplotlib.pyplot as plt
plt.style.use("arviz-variat")  # registered by arviz-plots' __init__
assert not is_deferred(arviz_plots)
import arviz
assert not is_deferred(arviz) and "summary" in dir(arviz) and "plot_forest" in dir(stand_in)
# a stand-in bound inside Bambi reads the real module
assert callable(bambi.interpret.comparisons)
assert bambi.interpret is sys.modules["bambi.interpret"] and not is_deferred(bambi.interpret)
print("ok")
"""


def test_plotting_modules_load_on_first_use():
    out = subprocess.run(
        [sys.executable, "-c", _CODE], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_a_failed_import_is_raised_again():
    import types

    from formulahier.backend.seam import deferred

    module = types.ModuleType("fh_test_missing_module")
    module.__class__ = deferred._Deferred
    for _ in range(2):  # nothing left half-loaded: the second use raises the same error
        try:
            module.anything  # noqa: B018
        except ImportError as err:
            assert "fh_test_missing_module" in str(err)
        else:
            raise AssertionError("expected ImportError")
    assert deferred.is_deferred(module)
