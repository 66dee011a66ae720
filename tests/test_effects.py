"""Conditional effects as brms draws them: population-level lines by default, checked by arithmetic."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import formulahier as fh  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_days_line_is_fixef_arithmetic(small_fit, draws):
    ce = small_fit.conditional_effects("Days")
    data = ce.data
    assert len(data) == 100
    assert list(data.columns[:2]) == ["effect", "Days"]
    assert {"estimate", "std_error", "lower", "upper"} <= set(data.columns)
    days = data["Days"].to_numpy()
    assert days[0] == 0 and days[-1] == 9
    fixef = small_fit.fixef()
    line = fixef.loc["Intercept", "estimate"] + days * fixef.loc["Days", "estimate"]
    np.testing.assert_allclose(data["estimate"], line, rtol=1e-9)
    per_draw = draws["b_Intercept"].to_numpy()[:, None] + np.outer(draws["b_Days"], days)
    np.testing.assert_allclose(data["lower"], np.quantile(per_draw, 0.025, axis=0), rtol=1e-9)
    np.testing.assert_allclose(data["upper"], np.quantile(per_draw, 0.975, axis=0), rtol=1e-9)
    narrow = small_fit.conditional_effects("Days", ci_prob=0.5).data
    assert (narrow["upper"] - narrow["lower"] < data["upper"] - data["lower"]).all()


def test_days_figure(small_fit, tmp_path):
    ce = small_fit.conditional_effects("Days", points=True)
    fig = ce.figure
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Days" and ax.get_ylabel() == "Reaction"
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), ce.data["estimate"])
    assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the ribbon
    assert len(ax.collections) >= 2  # ribbon and the observed points
    path = tmp_path / "ce.png"
    ce.savefig(path)
    assert path.stat().st_size > 1000
    assert isinstance(small_fit.plot_conditional_effects("Days"), matplotlib.figure.Figure)


def test_default_is_population_level_and_groups_are_asked_for(small_fit):
    assert small_fit.conditional_effects().data["effect"].unique().tolist() == ["Days"]
    with pytest.raises(fh.DataError, match="Subject"):
        small_fit.conditional_effects("Days", re_formula=None)
    with pytest.raises(fh.DataError):
        small_fit.conditional_effects("Nope")
    with pytest.raises(fh.DataError):
        small_fit.conditional_effects("Days", ci_prob=1.5)


def test_one_line_per_subject_with_group_effects(small_fit, draws):
    ce = small_fit.conditional_effects("Days:Subject", re_formula=None)
    data = ce.data
    assert data["Subject"].nunique() == 18 and len(data) == 18 * 100
    sub = data[data["Subject"] == "308"]
    b0 = draws["b_Intercept"] + draws["r_Subject[308,Intercept]"]
    b1 = draws["b_Days"] + draws["r_Subject[308,Days]"]
    np.testing.assert_allclose(sub["estimate"], b0.mean() + sub["Days"] * b1.mean(), rtol=1e-9)
    ax = ce.figure.axes[0]
    assert len(ax.get_lines()) == 18
    assert ax.get_legend().get_title().get_text() == "Subject"
    one = small_fit.conditional_effects("Days", re_formula=None, conditions={"Subject": "308"})
    np.testing.assert_allclose(one.data["estimate"], sub["estimate"].to_numpy(), rtol=1e-9)


@pytest.fixture(scope="module")
def cat_fit(sleepstudy):
    from _support import mocked_sampling

    data = sleepstudy.assign(
        group=np.where(sleepstudy["Subject"].astype(int) % 3 == 0, "a", "b"),
        z=np.linspace(-1, 1, len(sleepstudy)),
    )
    data.loc[data["Subject"].astype(int) % 3 == 1, "group"] = "c"
    with mocked_sampling():
        return fh.fit(
            "Reaction ~ Days * group + z + (1 | Subject)",
            data,
            draws=30,
            chains=1,
            progressbar=False,
        )


def test_categorical_effect_points_with_bars(cat_fit):
    ce = cat_fit.conditional_effects("group")
    data = ce.data
    assert data["group"].tolist() == ["a", "b", "c"]
    post = cat_fit.idata["posterior"]
    days = cat_fit.fh_model.data["Days"].mean()
    z = cat_fit.fh_model.data["z"].mean()
    b = {k: v.values.reshape(-1) for k, v in cat_fit._view.population_draws().items()}
    base = b["Intercept"] + b["Days"] * days + b["z"] * z
    expected = [
        base.mean(),
        (base + b["group[b]"] + b["Days:group[b]"] * days).mean(),
        (base + b["group[c]"] + b["Days:group[c]"] * days).mean(),
    ]
    np.testing.assert_allclose(data["estimate"], expected, rtol=1e-9)
    assert post.sizes["draw"] == 30
    ax = ce.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "group" and ax.get_ylabel() == "Reaction"


def test_interactions_and_default_effects(cat_fit):
    ce = cat_fit.conditional_effects()
    assert list(ce.frames) == ["Days", "group", "z", "Days:group"]
    assert len(ce.figure.axes) == 4
    lines = ce.frames["Days:group"]
    assert lines["group"].nunique() == 3 and len(lines) == 300
    # numeric second variable: mean - sd, mean, mean + sd, as brms
    zz = cat_fit.conditional_effects("Days:z").data["z"].unique()
    z = cat_fit.fh_model.data["z"]
    np.testing.assert_allclose(zz, [z.mean() - z.std(), z.mean(), z.mean() + z.std()])
    held = cat_fit.conditional_effects("Days", conditions={"group": "c"}).data
    assert (held["group"] == "c").all()
    assert isinstance(held, pd.DataFrame)
