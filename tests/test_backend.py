"""Correlated and centered blocks inside Bambi's PyMC model: names, dims, shapes, prior geometry.

No MCMC: models are built, and the prior is sampled forward to check that the implied group
effects have the covariance the block's sds and correlation say they have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import formulahier as fh


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 400
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "f": rng.choice(["lo", "mid", "hi"], size=n),
            "g": rng.choice([f"s{k}" for k in range(1, 41)], size=n),
            "h": rng.choice(["a", "b", "c"], size=n),
        }
    )


def free_names(model):
    return {v.name for v in model.free_RVs}


def test_correlated_block_variables(data):
    m = fh.model("y ~ x + (x | g)", data, collapse=False)
    pmm = m.build()
    names = set(pmm.named_vars)
    # Bambi's names for the group effects and their sds are kept
    assert {"1|g", "x|g", "1|g_sigma", "x|g_sigma", "g_corr"} <= names
    assert tuple(pmm.named_vars_to_dims["1|g"]) == ("g__factor_dim",)
    assert tuple(pmm.named_vars_to_dims["g_corr"]) == ("g_corr__effect", "g_corr__effect_bis")
    assert list(pmm.coords["g_corr__effect"]) == ["Intercept", "x"]
    # LKJ on the correlation, non-centered offsets by default
    kinds = {v.name: v.owner.op.__class__.__name__ for v in pmm.free_RVs}
    assert any("LKJCorr" in k for k in kinds.values())
    assert "g__block0_z_offset" in free_names(pmm)
    # the deviations are deterministics of the block, not independent Normals
    assert "1|g" not in free_names(pmm) and "1|g_offset" not in free_names(pmm)
    # natural level order: s2 before s10
    levels = list(pmm.coords["g__factor_dim"])
    assert levels.index("s2") < levels.index("s10")


def test_lkj_eta_reaches_model(data):
    m = fh.model("y ~ x + (x | g)", data, lkj_eta=3.5, collapse=False)
    pmm = m.build()
    rv = pmm["g_corr_chol"]
    eta = rv.owner.inputs[-1]
    assert float(eta.eval()) == pytest.approx(3.5)


def test_double_bar_has_no_correlation(data):
    pmm = fh.model("y ~ x + (x || g)", data, collapse=False).build()
    assert not [n for n in pmm.named_vars if n.endswith("_corr")]
    # Bambi's own independent terms
    assert {"1|g_offset", "x|g_offset"} <= free_names(pmm)


def test_correlated_false_is_bambi(data):
    pmm = fh.model("y ~ x + (x | g)", data, correlated=False, collapse=False).build()
    assert not [n for n in pmm.named_vars if n.endswith("_corr")]
    assert {"1|g_offset", "x|g_offset"} <= free_names(pmm)


def test_centered_block(data):
    pmm = fh.model("y ~ x + (x | g)", data, noncentered=False, collapse=False).build()
    assert "g__block0_beta_offset" in free_names(pmm)
    assert "g__block0_z_offset" not in free_names(pmm)
    assert tuple(pmm.named_vars_to_dims["g__block0_beta_offset"]) == (
        "g__factor_dim",
        "g__block0__effect",
    )


def test_centered_independent_block(data):
    pmm = fh.model("y ~ x + (1 | g)", data, noncentered=False, collapse=False).build()
    assert "g__block0_beta_offset" in free_names(pmm)
    assert "1|g" in pmm.named_vars


def test_per_factor_options(data):
    pmm = fh.model(
        "y ~ x + (x | g) + (1 | h)", data, noncentered={"g": False}, correlated={"g": True},
        collapse=False,
    ).build()
    assert "g__block0_beta_offset" in free_names(pmm)
    assert "1|h_offset" in free_names(pmm)  # h left to Bambi (non-centered, independent)


def test_three_effects_and_categorical(data):
    pmm = fh.model("y ~ x + f + (1 + x + f | g)", data, collapse=False).build()
    labels = list(pmm.coords["g_corr__effect"])
    assert labels[:2] == ["Intercept", "x"] and len(labels) == 4
    assert all(lab.startswith("f[") for lab in labels[2:])
    assert tuple(pmm.named_vars_to_dims["f|g"]) == ("g__factor_dim", "f__expr_dim")


def test_two_blocks_same_factor(data):
    pmm = fh.model("y ~ x + z + (x | g) + (0 + z + f | g)", data, collapse=False).build()
    assert {"g_corr", "g_corr_2"} <= set(pmm.named_vars)


def test_nested_blocks(data):
    pmm = fh.model("y ~ x + (x | h/g)", data, collapse=False).build()
    assert {"h_corr", "h:g_corr", "1|h:g", "x|h:g"} <= set(pmm.named_vars)


def test_user_data_not_modified(data):
    before = data.copy(deep=True)
    fh.model("y ~ x + (x | g)", data, collapse=False).build()
    pd.testing.assert_frame_equal(data, before)
    assert data["g"].dtype == before["g"].dtype


@pytest.mark.parametrize("noncentered", [True, False])
def test_prior_draws_have_the_block_covariance(noncentered):
    """Forward draws: per draw, the sample correlation of (u0_j, u1_j) over many levels tracks
    the drawn correlation, and their sds track the drawn sds."""
    rng = np.random.default_rng(5)
    n_groups = 300
    df = pd.DataFrame(
        {
            "y": rng.normal(size=2 * n_groups),
            "x": rng.normal(size=2 * n_groups),
            "g": np.repeat(np.arange(n_groups), 2).astype(str),
        }
    )
    pmm = fh.model("y ~ x + (x | g)", df, noncentered=noncentered, collapse=False).build()
    with pmm:
        prior = pm.sample_prior_predictive(draws=150, random_seed=2)["prior"]
    u0 = prior["1|g"].values[0]
    u1 = prior["x|g"].values[0]
    rho = prior["g_corr"].values[0][:, 0, 1]
    sd0 = prior["1|g_sigma"].values[0]
    sample_rho = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(u0, u1, strict=True)])
    assert np.corrcoef(rho, sample_rho)[0, 1] > 0.95
    assert np.abs(rho - sample_rho).max() < 0.3
    ratio = u0.std(axis=1) / sd0
    assert np.median(ratio) == pytest.approx(1, abs=0.1)
    if not noncentered:
        # u = beta - b: deviations are centered on zero for each draw
        assert np.abs(u0.mean(axis=1) / sd0).max() < 0.4
