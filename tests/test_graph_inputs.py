"""The data's numbers and sizes as inputs of the compiled graph (formulahier/graph_inputs.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import formulahier as fh

FORMULA = "Reaction ~ Days + (Days | Subject)"


def _simulated(subjects: int, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s, d = np.repeat(np.arange(subjects), days), np.tile(np.arange(days), subjects)
    y = 250 + 10 * d + rng.normal(0, 25, subjects)[s] + rng.normal(0, 25, s.size)
    return pd.DataFrame({"Reaction": y, "Days": d, "Subject": [f"S{i}" for i in s]})


def _functions(data):
    from formulahier.callback_nuts import _joined_functions

    model = fh.model(FORMULA, data).pymc_model
    start = model.initial_point()
    return model, start, _joined_functions(model, start)


def _key(fn) -> str:
    """The key numba's disk cache files the compiled graph under."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    return numba_funcify_and_cache_key(fn.maker.fgraph)[1]


@pytest.fixture(scope="module")
def two_data_sets(sleepstudy):
    shifted = sleepstudy.copy()
    shifted["Reaction"] = shifted["Reaction"] + 0.0123  # other prior means and scales
    return [_functions(shifted), _functions(_simulated(30, 12, seed=5))]  # other sizes


def test_same_structure_same_compiled_code(two_data_sets):
    (_, _, (logp_a, expand_a, _)), (_, _, (logp_b, expand_b, _)) = two_data_sets
    assert _key(logp_a) is not None
    assert _key(logp_a) == _key(logp_b)
    assert _key(expand_a) == _key(expand_b)


def test_lifted_graph_equals_pymcs_logp_and_gradient(two_data_sets):
    rng = np.random.default_rng(1)
    for model, start, (logp_fn, expand_fn, names) in two_data_sets:
        value_vars = [model.rvs_to_values[rv] for rv in model.free_RVs]
        sizes = [np.size(start[v.name]) for v in value_vars]
        x = rng.normal(scale=0.5, size=sum(sizes))
        pieces = np.split(x, np.cumsum(sizes)[:-1])
        shaped = zip(value_vars, pieces, strict=True)
        point = {v.name: p.reshape(np.shape(start[v.name])) for v, p in shaped}
        value, grad = logp_fn(x)
        logp, dlogp = (f(mode="FAST_COMPILE") for f in (model.compile_logp, model.compile_dlogp))
        np.testing.assert_allclose(value, logp(point), rtol=1e-10)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-10, atol=1e-10)
        kept = dict(zip(names, expand_fn(x), strict=True))
        assert set(kept) >= {"Intercept", "Days", "sigma"}


def test_lift_constants_keeps_structural_values_and_the_result():
    import pytensor
    import pytensor.tensor as pt

    from formulahier.graph_inputs import lift_constants

    x = pt.dvector("x")
    out = pt.sum((x * 3.7 - np.array([0.25, -8.5])) ** 2) + 1.0 + pt.constant(2.75, dtype="float32") * x[0]
    (lifted,), vector = lift_constants([out])
    assert sorted(vector.get_value().tolist()) == [-8.5, 0.25, 2.75, 3.7]  # not 1.0 nor 2
    f, g = pytensor.function([x], out), pytensor.function([x], lifted)
    value = np.array([0.3, -1.2])
    assert g(value) == pytest.approx(f(value), rel=1e-7)  # float32's 2.75 is exact
    vector.set_value(vector.get_value() * 0)  # the values are read from the input
    assert g(value) != pytest.approx(f(value))
    assert lift_constants([pt.sum(x) + 1.0])[1] is None


def test_free_shapes_reads_the_models_shared_variable():
    import pytensor
    import pytensor.tensor as pt

    from formulahier.graph_inputs import free_shapes

    data = pytensor.shared(np.ones((3, 2)), name="d", shape=(3, 2))
    row = pytensor.shared(np.ones((1, 2)), name="r", shape=(1, 2))
    x = pt.dvector("x")
    out = pt.sum(data * row * x) + data.shape[0]
    (free,) = free_shapes([out])
    f = pytensor.function([x], free)
    types = {v.name: v.type.shape for v in f.maker.fgraph.inputs if v.name in ("d", "r")}
    assert types == {"d": (None, None), "r": (1, None)}  # lengths of 1 still broadcast
    assert f(np.array([1.0, 2.0])) == pytest.approx(3 * 3 + 3)
    data.set_value(np.full((3, 2), 2.0))  # as k-fold swaps the data: seen by the function
    assert f(np.array([1.0, 2.0])) == pytest.approx(2 * 3 * 3 + 3)


def test_new_data_set_into_the_model_is_what_the_function_reads(two_data_sets):
    """As k-fold and SBC swap data: ``set_value`` on the model's cross-products is seen."""
    from formulahier.callback_nuts import _direct

    model, start, (logp_fn, _, _) = two_data_sets[0]
    yty = next(v for v in _model_shared(model) if v.name == "Reaction__yty")
    x = np.concatenate([np.ravel(start[model.rvs_to_values[rv].name]) for rv in model.free_RVs])
    before = float(logp_fn(x)[0])
    old = yty.get_value()
    try:
        yty.set_value(old * 1.01)
        after = float(_direct(logp_fn)(x)[0])
        expected = model.compile_logp(mode="FAST_COMPILE")(start)
    finally:
        yty.set_value(old)
    assert after != pytest.approx(before)
    np.testing.assert_allclose(after, expected, rtol=1e-10)
    assert float(_direct(logp_fn)(x)[0]) == pytest.approx(before, rel=1e-12)


def _model_shared(model):
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    return [v for v in ancestors([model.logp()]) if isinstance(v, SharedVariable)]
