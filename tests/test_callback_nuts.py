"""nutpie through Python callbacks (formulahier/callback_nuts.py) and the rule for its route."""

from __future__ import annotations

import numpy as np


def _tiny_model():
    import pymc as pm

    import formulahier.backend  # noqa: F401 - links PyTensor's BLAS first, as a fit does

    rng = np.random.default_rng(3)
    y = rng.normal(1.0, 2.0, size=40)
    with pm.Model(coords={"k": ["a", "b"]}) as model:
        mu = pm.Normal("mu", 0, 5)
        sigma = pm.HalfNormal("sigma", 3)
        w = pm.Normal("w", 0, 1, dims="k")
        pm.Deterministic("total", mu + w.sum())
        pm.Normal("y", mu + w[0] - w[1], sigma, observed=y)
    return model


def test_callback_functions_equal_pymcs_logp_and_gradient():
    from pymc.initial_point import make_initial_point_fn

    from formulahier.callback_nuts import _joined_functions

    model = _tiny_model()
    start = make_initial_point_fn(model=model, return_transformed=True)(0)
    logp_fn, expand_fn, names = _joined_functions(model, start)
    rng = np.random.default_rng(0)
    x = rng.normal(size=4)
    point = {"mu": x[0], "sigma_log__": x[1], "w": x[2:4]}
    value, grad = logp_fn(x)
    np.testing.assert_allclose(value, model.compile_logp()(point), rtol=1e-12)
    np.testing.assert_allclose(grad, model.compile_dlogp()(point), rtol=1e-10)
    kept = dict(zip(names, expand_fn(x), strict=True))
    assert set(kept) == {"mu", "sigma", "w", "total"}  # the per-row mu would not be kept
    np.testing.assert_allclose(kept["sigma"], np.exp(x[1]))
    np.testing.assert_allclose(kept["total"], x[0] + x[2] + x[3])


def test_nutpie_route_rule():
    from formulahier.samplers import CALLBACK_MAX_CELLS, gradient_cells, nutpie_route

    assert gradient_cells(True, 10**6, 2, 36) == 36  # collapsed: levels x columns, not rows
    assert gradient_cells(False, 180, 2, 36) == 360
    assert nutpie_route(360) == "callbacks"
    assert nutpie_route(CALLBACK_MAX_CELLS) == "compiled"
    assert nutpie_route(50_000, collapsed=True) == "callbacks"
    assert nutpie_route(50_000, collapsed=False) == "compiled"  # samples its group effects


def test_direct_call_equals_the_function_and_sees_new_data():
    import pymc as pm
    import pytensor

    import formulahier.backend  # noqa: F401
    from formulahier.callback_nuts import _direct

    data = pytensor.shared(np.arange(3.0), name="data")
    x = pytensor.tensor.vector("x", shape=(3,))
    fn = pm.compile([x], [(x * data).sum(), x + data], mode="NUMBA")
    direct = _direct(fn)
    assert direct is not fn  # the numba graph itself
    point = np.array([1.0, 2.0, 3.0])
    for value, expected in zip(direct(point), fn(point), strict=True):
        np.testing.assert_array_equal(value, expected)
    bound = direct.bound()  # one sampling run: the values of now
    assert direct.plain()  # C-ordered float64 outputs: no conversion per callback
    data.set_value(np.ones(3))  # the shared containers are read at every call
    np.testing.assert_array_equal(direct(point)[1], point + 1)
    assert float(direct(point)[0]) == 6.0
    np.testing.assert_array_equal(bound(point)[1], point + np.arange(3.0))
    np.testing.assert_array_equal(direct.bound()(point)[1], point + 1)  # the next run sees it


def test_thread_state_kept_and_given_back_on_a_thread():
    import threading

    from formulahier.callback_nuts import _ThreadState

    seen = []

    def chain():
        for _ in range(3):  # as nutpie's callbacks: keep on each, release after the last draw
            _ThreadState.keep()
        seen.append(getattr(_ThreadState.local, "state", None) is not None)
        _ThreadState.release()
        _ThreadState.release()  # a second release does nothing
        seen.append(getattr(_ThreadState.local, "state", None))

    worker = threading.Thread(target=chain)
    worker.start()
    worker.join()
    assert seen == [_ThreadState.enabled, None]


def test_kept_variables_leave_out_the_per_row_mean():
    """What a trace keeps: free variables and Deterministics, not Bambi's mean per row (``mu``),
    which ``unobserved_value_vars`` hands over as a clone (so it is matched by name)."""
    import formulahier as fh
    from formulahier.callback_nuts import kept_variables

    sleep = fh.datasets.load("sleepstudy")
    model = fh.model("Reaction ~ Days + (Days | Subject)", sleep, collapse=False).pymc_model
    names = {v.name for v in kept_variables(model)}
    assert "mu" in model.named_vars and "mu" not in names
    assert {"Intercept", "Days", "sigma", "Days|Subject_sigma", "Days|Subject"} <= names
