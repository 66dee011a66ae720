"""Ozone: three models ranked by PSIS-LOO; a saved fit reloaded in a fresh process.

Run ``python scripts/ozone_compare.py [draws] [out.nc]`` (default 300 draws, 2 chains).
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import formulahier as fh

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 300
path = sys.argv[2] if len(sys.argv) > 2 else "ozone_slopes.nc"
warnings.simplefilter("ignore", FutureWarning)
ozone = fh.datasets.load("ozone")
opts = {"draws": draws, "tune": draws, "chains": 2, "seed": 1, "progressbar": False}
start = time.perf_counter()
f0 = fh.fit("log_ozone ~ TEMP", ozone, **opts)
f1 = f0.update(". ~ . + (1 | station)")
f2 = f0.update(". ~ . + (TEMP | station)")
print(f"three fits: {time.perf_counter() - start:.0f} s")
start = time.perf_counter()
table = fh.compare({"simple": f0, "intercepts": f1, "slopes": f2})
print(f"compare: {time.perf_counter() - start:.0f} s")
print(table.round(2).to_string())
f2.save(path)
code = (
    "import formulahier as fh, pandas as pd\n"
    f"fit = fh.load({path!r})\n"
    "new = pd.DataFrame({'TEMP': [0.0, 10.0, 25.0], 'station': ['Nowhere'] * 3})\n"
    "print(fit.predict(new, allow_new_levels=True, seed=1))\n"
    "print(fit.fixef())\n"
)
print(
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
)
