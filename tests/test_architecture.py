"""The import graph of the package: no cycle, no upward arrow (docs/architecture.md).

Every module of ``formulahier`` belongs to one layer of :data:`LAYERS`; a module may import
modules of its own layer or of layers below it, never above. Imports inside functions count
(they are arrows all the same); imports under ``if TYPE_CHECKING:`` do not. A new module must be
placed in a layer here explicitly: the test fails for a module no layer names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "formulahier"

#: Bottom to top. A name covers the module and, for a subpackage, every module inside it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # what everything may use: the error classes, the version, the model options and sampler
    # settings (frozen dataclasses), the frozen spec, validators
    ("foundation", ("errors", "about", "settings", "spec", "validate", "progress", "blas")),
    # formula text -> ModelSpec; R/brms family names -> Bambi's; the safe grammar of formulas
    # read from files
    ("formula", ("formula", "families", "safety")),
    # pieces the backend is built from: group codes and columns, the collapsed algebra,
    # parameterization, brms-style priors, bundled data sets
    ("model pieces", ("groups", "collapsed", "parameterization", "priors", "datasets", "graph_inputs")),
    # the backend: Bambi's model plus the blocks; backend/seam/ alone knows Bambi internals
    ("backend", ("backend",)),
    # checks of the data against the spec
    ("checks", ("checks", "data")),
    # arguments -> complete spec -> backend, one stage after another; prior tables; the
    # approximate methods (laplace, pathfinder, advi) that Model.fit calls instead of NUTS
    # and nutpie's callback route (callback_nuts)
    (
        "construction",
        (
            "construct",
            "prior_check",
            "approx",
            "approx_check",
            "laplace",
            "samplers",
            "callback_nuts",
        ),
    ),
    # what Fit delegates to: they take a fit-like object and never import fit.py
    (
        "after the fit",
        (
            "predict",
            "results",
            "table_format",
            "brms_names",
            "plots",
            "io",
            "comparison",
            "effects",
            "verbs",
            "fit_base",
            "fit_verbs",
            "fit_tools",
            "teaching_plots",
            "marginal",
            # k-fold refits through the fit's own Model class; the job runner beneath it
            "many",
            "kfold",
        ),
    ),
    # Fit (fitted.py), Model (modeling.py: builds and samples), fh.fit / fh.model / fh.load (api.py)
    ("fit", ("fitted", "modeling", "api")),
    # many fits: simulation-based calibration, k-fold, batches of models
    ("many fits", ("sbc", "segments")),
    # entry points: the package face, the command line
    ("entry points", ("", "cli", "__main__")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]):
        self.base = module.split(".") if module else []
        if not is_package:
            self.base = self.base[:-1]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":  # annotations only: not an import at run time
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _add(self, dotted: str, names: list[str]) -> None:
        for name in names:
            candidate = f"{dotted}.{name}" if dotted else name
            self.found.add(candidate if candidate in self.known else dotted)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.base[: len(self.base) - (node.level - 1)]
            dotted = ".".join(base + ([node.module] if node.module else []))
        elif node.module and (node.module + ".").startswith("formulahier."):
            dotted = node.module.removeprefix("formulahier").lstrip(".")
        else:
            return
        self._add(dotted, [a.name for a in node.names])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if (alias.name + ".").startswith("formulahier."):
                self.found.add(alias.name.removeprefix("formulahier").lstrip("."))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", set(modules))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {m for m in visitor.found if m != name and m in modules}
    return graph


def _layer(module: str) -> int | None:
    best, best_len = None, -1
    for index, (_, names) in enumerate(LAYERS):
        for prefix in names:
            hit = module == prefix or (prefix and module.startswith(prefix + "."))
            if hit and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def test_every_module_has_a_layer():
    unplaced = sorted(m or "formulahier/__init__" for m in _modules() if _layer(m) is None)
    assert not unplaced, (
        f"modules in no layer: {unplaced}; add each to LAYERS in tests/test_architecture.py "
        "(and to docs/architecture.md)"
    )


def test_no_upward_import():
    graph = _graph()
    upward = []
    for module, targets in graph.items():
        mine = _layer(module)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                upward.append(
                    f"{module or 'formulahier'} ({LAYERS[mine][0]}) imports "
                    f"{target or 'formulahier'} ({LAYERS[theirs][0]})"
                )
    assert not upward, "imports reaching up a layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_the_face_imports_the_face():
    graph = _graph()
    users = sorted(m for m, targets in graph.items() if "" in targets and _layer(m) != len(LAYERS) - 1)
    assert not users, f"modules importing the package face `formulahier`: {users}"


#: The one place that may use Bambi's and formulae's internals (docs/architecture.md).
SEAM = "backend.seam"
FOREIGN = ("bambi", "formulae")


def _internal_uses(tree: ast.AST, public: dict[str, set[str]]) -> list[tuple[int, str]]:
    """Uses of a Bambi or formulae submodule, or of a name not in the package's ``__all__``.

    ``import bambi.backend``, ``from bambi.utils import x``, ``from bambi import backend`` and
    ``bmb.backend`` after ``import bambi as bmb`` are internal; ``bmb.Model`` and
    ``fm.model_description`` are the public face.
    """
    found: list[tuple[int, str]] = []
    aliases: dict[str, str] = {}  # local name -> foreign package
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top in public and rest:
                    found.append((node.lineno, alias.name))
                elif top in public:
                    aliases[alias.asname or top] = top
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            top, _, rest = node.module.partition(".")
            if top not in public:
                continue
            for alias in node.names:
                if rest or alias.name not in public[top]:
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in public[aliases[node.value.id]]
        ):
            found.append((node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
    return found


def _public_names() -> dict[str, set[str]]:
    import importlib

    return {name: set(importlib.import_module(name).__all__) for name in FOREIGN}


def test_only_the_seam_knows_bambi_internals():
    public = _public_names()
    found = []
    for name, path in _modules().items():
        if name == SEAM or name.startswith(SEAM + "."):
            continue
        for line, what in _internal_uses(ast.parse(path.read_text(encoding="utf-8")), public):
            found.append(f"{name}:{line} uses {what}")
    assert not found, (
        "Bambi/formulae internals outside formulahier/backend/seam/ (move the use into the "
        "seam and call it from there):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "internal"),
    [
        ("import bambi as bmb\nbmb.Model\n", []),
        ("from bambi import Prior\n", []),
        ("import formulae as fm\nfm.model_description\n", []),
        ("from bambi.utils import get_aliased_name\n", ["bambi.utils.get_aliased_name"]),
        ("import bambi.defaults.families\n", ["bambi.defaults.families"]),
        ("from bambi import backend\n", ["bambi.backend"]),
        ("import bambi as b\nb.backend.terms\n", ["bambi.backend"]),
        ("def f():\n    from formulae.terms import Term\n", ["formulae.terms.Term"]),
    ],
)
def test_internal_uses_are_found(source, internal):
    public = {"bambi": {"Model", "Prior"}, "formulae": {"model_description"}}
    assert [what for _, what in _internal_uses(ast.parse(source), public)] == internal


def test_seam_exists():
    # the guard above is empty if the seam moves: it must name a real subpackage
    assert SEAM in _modules()


@pytest.mark.parametrize("source", ["from .. import spec\n", "from ..spec import ModelSpec\n"])
def test_relative_imports_are_read(source):
    # a subpackage module importing from its parent package is an arrow to that module
    visitor = _Imports("formula.parse", False, {"spec", "formula", "formula.parse"})
    visitor.visit(ast.parse(source))
    assert visitor.found == {"spec"}


def test_the_backend_is_built_from_the_complete_spec(sleepstudy):
    # the LKJ shape of a class-cor prior is in the spec before the backend is built, and the
    # backend holds that very spec (nothing is written back into it afterwards)
    import formulahier as fh
    from formulahier import construct

    priors = [fh.prior("lkj(4)", "cor", group="Subject"), fh.prior("normal(0, 5)", "b")]
    spec = construct.resolve_spec("Reaction ~ Days + (Days | Subject)")
    done = construct.complete_spec(spec, sleepstudy, priors)
    assert done.spec.eta_for("Subject") == 4.0
    model = fh.model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=priors)
    assert model.spec == done.spec
    assert model.bambi.fh_spec is model.spec
    assert model.prior_summary().query("`class` == 'cor' and group == 'Subject'")[
        "prior"
    ].tolist() == ["lkj(4)"]


# The error contract: bad input raises a specific subclass from errors.py, never the bare root
# nor a builtin. A cheap guard over the source; the fuzz tests check the behaviour.
NOT_RAISED = {
    "FormulahierError",
    "Exception",
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "LookupError",
    "AttributeError",
    "RuntimeError",
    "OSError",
    "IOError",
    "FileNotFoundError",
}


def test_no_bare_root_or_builtin_raised():
    found = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        # a module's __getattr__ raises AttributeError: that is Python's protocol (PEP 562)
        protocol = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None or id(node) in protocol:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in NOT_RAISED:
                found.append(f"{name or '__init__'}:{node.lineno} raise {exc.id}")
    assert not found, f"raise a specific subclass from formulahier.errors instead: {found}"
