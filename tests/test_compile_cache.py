"""The disk cache of compiled PyTensor functions (formulahier/compile_cache.py)."""

from __future__ import annotations

import numpy as np


def test_graph_key_changes_with_the_graph_and_its_data():
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    from formulahier.compile_cache import graph_key

    def key(data, dtype="float64", scale=2.0):
        x = pt.vector("x", dtype=dtype)
        shared = pytensor.shared(np.asarray(data, dtype=float), name="d")
        return graph_key([x], [(scale * x * shared).sum()])

    assert key([1.0, 2.0]) == key([1.0, 2.0])  # same graph, same data, fresh variables
    assert key([1.0, 2.0]) != key([1.0, 2.5])  # the data
    assert key([1.0, 2.0]) != key([1.0, 2.0], scale=3.0)  # a constant
    assert key([1.0, 2.0]) != key([1.0, 2.0], dtype="float32")  # a type

    class NoProps(Op):  # an Op the hash cannot describe: never cached
        def make_node(self, v):
            return Apply(self, [v], [v.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = inputs[0]

    x = pt.vector("x")
    assert graph_key([x], [NoProps()(x)]) is None


def test_cached_compile_reuses_ignores_bad_entries_and_can_be_off(tmp_path, monkeypatch):
    import pytensor
    import pytensor.tensor as pt

    from formulahier.compile_cache import cached_compile

    monkeypatch.setenv("FORMULAHIER_CACHE_DIR", str(tmp_path))
    calls = []

    def compiled():
        x = pt.vector("x")
        out = (x**2).sum()

        def compile_fn():
            calls.append(1)
            return pytensor.function([x], out)

        return cached_compile([x], [out], compile_fn)

    assert compiled()(np.array([1.0, 2.0])) == 5.0
    assert compiled()(np.array([1.0, 3.0])) == 10.0
    assert len(calls) == 1  # the second one came from the disk
    (entry,) = tmp_path.glob("*.pkl")
    entry.write_bytes(b"not a pickle")  # a damaged entry: compiled again, and replaced
    assert compiled()(np.array([2.0])) == 4.0
    assert len(calls) == 2
    assert compiled()(np.array([2.0])) == 4.0 and len(calls) == 2
    monkeypatch.setenv("FORMULAHIER_COMPILE_CACHE", "0")
    assert compiled()(np.array([2.0])) == 4.0
    assert len(calls) == 3
