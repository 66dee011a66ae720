"""Small-matrix algebra written out entry by entry (formulahier/collapsed/small.py).

Values against numpy/scipy, gradients against PyTensor's LAPACK-backed ops, sizes 1-4, single and
batched; and the compiled collapsed graphs of sleepstudy and ozone call no LAPACK/BLAS op.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

SIZES = [1, 2, 3, 4]


def _spd(rng, n, batch=()):
    M = rng.normal(size=(*batch, n, n))
    return M @ np.swapaxes(M, -1, -2) + n * np.eye(n)


def _fn(inputs, outputs):
    import pytensor

    return pytensor.function(inputs, outputs, mode="FAST_COMPILE")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_values_equal_numpy(n, batch):
    import pytensor.tensor as pt

    from formulahier.collapsed import small

    rng = np.random.default_rng(n)
    A_val = _spd(rng, n, batch)
    B_val = rng.normal(size=(*batch, n, 2))
    b_val = rng.normal(size=(*batch, n))
    A = pt.tensor("A", shape=A_val.shape)
    B = pt.tensor("B", shape=B_val.shape)
    b = pt.tensor("b", shape=b_val.shape)
    L = small.cholesky(A)
    outs = [L, small.solve_lower(L, B), small.solve_lower(L, b, b_ndim=1),
            small.solve_lower_t(L, B), small.solve_lower_t(L, b, b_ndim=1), small.inv_lower(L),
            small.logdet_chol(L, total=False), small.matmul(A, B), small.matvec(A, b)]  # fmt: skip
    got = _fn([A, B, b], outs)(A_val, B_val, b_val)
    L_np = np.linalg.cholesky(A_val)

    def each(f, *arrays):  # scipy's solvers are not batched
        if not batch:
            return f(*arrays)
        return np.stack([f(*[a[k] for a in arrays]) for k in range(batch[0])])

    def lower(T, Y):
        return scipy.linalg.solve_triangular(T, Y, lower=True)

    def upper(T, Y):
        return scipy.linalg.solve_triangular(T.T, Y, lower=False)

    expected = [L_np, each(lower, L_np, B_val), each(lower, L_np, b_val),
                each(upper, L_np, B_val), each(upper, L_np, b_val), np.linalg.inv(L_np),
                np.linalg.slogdet(A_val)[1], A_val @ B_val,
                (A_val @ b_val[..., None])[..., 0]]  # fmt: skip
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    assert small.unrolled(A)


@pytest.mark.parametrize("n", SIZES)
def test_gradients_equal_lapack_ops(n):
    """d/dM of a scalar through A = M M' + n I: the unrolled and the LAPACK graphs agree."""
    import pytensor
    import pytensor.tensor as pt

    from formulahier.collapsed import small

    rng = np.random.default_rng(10 + n)
    M = pt.tensor("M", shape=(2, n, n))
    B = pt.tensor("B", shape=(2, n, 3))
    A = pt.matmul(M, pt.swapaxes(M, -1, -2)) + n * np.eye(n)

    def scalar(chol, solve, solve_t, inv, logdet):
        L = chol(A)
        W = solve(L, B)
        V = solve_t(L, B[..., 0])
        return pt.sum(W**2) + pt.sum(V * pt.arange(1, n + 1)) + pt.sum(inv(L) ** 3) + logdet(L)

    ours = scalar(small.cholesky, small.solve_lower,
                  lambda L, b: small.solve_lower_t(L, b, b_ndim=1), small.inv_lower,
                  small.logdet_chol)  # fmt: skip
    theirs = scalar(
        pt.linalg.cholesky,
        lambda L, b: pt.linalg.solve_triangular(L, b, lower=True, b_ndim=2),
        lambda L, b: pt.linalg.solve_triangular(pt.swapaxes(L, -1, -2), b, lower=False, b_ndim=1),
        lambda L: pt.linalg.solve_triangular(L, pt.eye(n), lower=True, b_ndim=2),
        lambda L: 2 * pt.sum(pt.log(pt.diagonal(L, axis1=-2, axis2=-1))),
    )
    f = _fn([M, B], [ours, theirs, *pytensor.grad(ours, [M, B]), *pytensor.grad(theirs, [M, B])])
    v1, v2, gM1, gB1, gM2, gB2 = f(rng.normal(size=(2, n, n)), rng.normal(size=(2, n, 3)))
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    np.testing.assert_allclose(gM1, gM2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gB1, gB2, rtol=1e-10, atol=1e-12)


def test_larger_sizes_fall_back_to_pytensor_linalg():
    import pytensor.tensor as pt

    from formulahier.collapsed import small

    n = small.MAX_UNROLLED + 1
    A = pt.tensor("A", shape=(n, n))
    assert not small.unrolled(A)
    A_val = _spd(np.random.default_rng(0), n)
    L = _fn([A], small.cholesky(A))(A_val)
    np.testing.assert_allclose(L, np.linalg.cholesky(A_val), rtol=1e-12)


def _ops(fgraph):
    """The op types of ``fgraph``'s nodes, inner graphs (OpFromGraph, Composite...) included."""
    for node in fgraph.apply_nodes:
        op = node.op
        yield op
        core = getattr(op, "core_op", None)
        if core is not None:
            yield core
        inner = getattr(op, "fgraph", None)
        if inner is not None and inner is not fgraph:
            yield from _ops(inner)


@pytest.mark.parametrize(
    ("formula", "dataset"),
    [("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
     ("log_ozone ~ TEMP + (TEMP | station)", "ozone")],  # fmt: skip
)
def test_compiled_collapsed_graph_calls_no_lapack_or_blas(formula, dataset):
    """No op of the compiled logp+grad and expand graphs needs a LAPACK/BLAS pointer look-up."""
    from pymc.initial_point import make_initial_point_fn
    from pytensor.tensor.blas import Gemv
    from pytensor.tensor.linalg import Cholesky, SolveBase
    from pytensor.tensor.math import Dot

    import formulahier as fh
    from formulahier.callback_nuts import _joined_functions

    m = fh.model(formula, fh.datasets.load(dataset))
    assert m.collapsed
    model = m.pymc_model
    start = make_initial_point_fn(model=model, return_transformed=True)(0)
    logp_fn, expand_fn, _ = _joined_functions(model, start)
    banned = (Cholesky, SolveBase, Dot, Gemv)
    found = [type(op).__name__ for fn in (logp_fn, expand_fn) for op in _ops(fn.maker.fgraph)
             if isinstance(op, banned) or "linalg" in type(op).__module__]  # fmt: skip
    assert found == []
