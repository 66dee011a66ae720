"""fit.save / fh.load: a round trip gives back a working Fit without sampling. Sampling is
mocked (prior draws); one test loads in a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from _support import mocked_sampling

import formulahier as fh
from formulahier import io


@pytest.fixture(scope="module")
def saved(sleepstudy, tmp_path_factory):
    data = sleepstudy.copy()
    data["Subject"] = "s" + data["Subject"].astype(str)  # string factor levels
    with mocked_sampling():
        fit = fh.fit(
            "Reaction ~ Days + (Days | Subject)",
            data,
            draws=30,
            chains=2,
            seed=4,
            progressbar=False,
            lkj_eta=3.0,
        )
    path = tmp_path_factory.mktemp("io") / "sleep.nc"
    fit.save(path)
    return fit, path


def test_round_trip_tables_equal(saved):
    fit, path = saved
    back = fh.load(path)
    assert isinstance(back, fh.Fit)
    pd.testing.assert_frame_equal(back.fixef(), fit.fixef())
    pd.testing.assert_frame_equal(back.varcorr(), fit.varcorr())
    for factor, table in fit.ranef().items():
        pd.testing.assert_frame_equal(back.ranef()[factor], table)
    pd.testing.assert_frame_equal(back.summary().population, fit.summary().population)
    assert back.spec == fit.spec
    assert back.settings == fit.settings
    assert back.fh_model.options["lkj_eta"] == 3.0
    pd.testing.assert_frame_equal(back.fh_model.data, fit.fh_model.data)
    assert str(back).splitlines()[:4] == str(fit).splitlines()[:4]


def test_round_trip_predictions_incl_new_levels(saved, sleepstudy):
    fit, path = saved
    back = fh.load(path)
    new = pd.DataFrame({"Days": [0.0, 3.0, 5.0], "Subject": ["s308", "s309", "someone new"]})
    kw = {"allow_new_levels": True, "seed": 9}
    pd.testing.assert_frame_equal(back.predict(new, **kw), fit.predict(new, **kw))


def test_bf_fit_round_trip(tmp_path, mock_sampling):
    """A distributional model (fh.bf) saves its auxiliary formula and loads back as itself,
    including the column only the sigma formula reads."""
    rng = np.random.default_rng(2)
    data = pd.DataFrame(
        {"y": rng.normal(size=60), "x": rng.normal(size=60), "z": rng.normal(size=60)}
    )
    data["g"] = [f"g{k % 6}" for k in range(60)]
    fit = fh.fit(
        fh.bf("y ~ x + (1 | g)", sigma="~ z"), data, draws=10, chains=1, seed=3, progressbar=False
    )
    path = fit.save(tmp_path / "bf.nc")
    back = fh.load(path)
    assert back.spec == fit.spec
    assert back.spec.dpars == (("sigma", "sigma ~ z"),)
    assert "z" in back.fh_model.data.columns
    pd.testing.assert_frame_equal(back.fixef(), fit.fixef())


def test_file_is_data_not_pickle(saved):
    fit, path = saved
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        groups = set(f.keys())
    assert {"posterior", io.DATA_GROUP} <= groups
    assert set(fit.idata.children) - {"posterior_predictive", "log_likelihood"} <= groups
    assert attrs["format"] == io.FORMAT
    assert int(np.ravel(attrs["format_version"])[0]) == io.FORMAT_VERSION
    options = json.loads(attrs["options"])
    assert options["lkj_eta"] == 3.0
    assert open(path, "rb").read().find(b"\x80\x04\x95") == -1  # no pickle protocol 4 frames


def test_load_in_fresh_process(saved):
    _, path = saved
    code = (
        "import formulahier as fh, pandas as pd\n"
        f"fit = fh.load({str(path)!r})\n"
        "new = pd.DataFrame({'Days': [1.0], 'Subject': ['new one']})\n"
        "t = fit.predict(new, allow_new_levels=True, seed=1)\n"
        "print(len(t), float(t['estimate'].iloc[0]) == float(t['estimate'].iloc[0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "True"]


def test_newer_format_is_refused_with_reason(saved, tmp_path):
    _, path = saved
    copy = tmp_path / "future.nc"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "a") as f:
        f.attrs["format_version"] = io.FORMAT_VERSION + 1
        f.attrs["formulahier_version"] = "9.9.9"
    with pytest.raises(fh.FormulahierError, match=r"9\.9\.9.*Upgrade formulahier"):
        fh.load(copy)


def test_not_a_saved_fit(tmp_path):
    import xarray as xr

    other = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(fh.FormulahierError, match="not a fit saved by formulahier"):
        fh.load(other)
    junk = tmp_path / "junk.nc"
    junk.write_text("hello")
    with pytest.raises(fh.FormulahierError, match="not a netCDF file"):
        fh.load(junk)
    with pytest.raises(fh.FitFileError, match="does not exist") as info:
        fh.load(tmp_path / "missing.nc")
    assert isinstance(info.value, OSError)  # FitFileError is an OSError too


def test_data_columns_round_trip():
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5, 3.5],
            "n": [1, 2, 3],
            "s": ["a", "b", "c"],
            "g": pd.Categorical(["u", "w", "u"], categories=["w", "u"], ordered=True),
            "k": pd.Categorical([2, 10, 2], categories=[2, 10], ordered=True),
        }
    )
    back = io.dataset_to_data(io.data_to_dataset(frame))
    pd.testing.assert_frame_equal(back, frame)


def test_unused_unstorable_columns_are_left_out():
    frame = pd.DataFrame({"y": [1.0, 2.0], "when": pd.to_datetime(["2020-01-01", "2020-01-02"])})
    ds = io.data_to_dataset(frame, required={"y"})
    assert list(io.dataset_to_data(ds).columns) == ["y"]
    with pytest.raises(fh.DataError, match="when"):
        io.data_to_dataset(frame, required={"y", "when"})
