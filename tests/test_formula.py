"""Formula translation: lme4/brms text -> spec -> Bambi formula (table-driven)."""

from __future__ import annotations

import pytest

from formulahier import FormulaError, PriorError, build_spec, parse_formula

# formula, expected Bambi formula, expected blocks as (factor, terms, correlated)
TRANSLATIONS = [
    (
        "log_ozone ~ TEMP + (TEMP | station)",
        "log_ozone ~ TEMP + (1 + TEMP | station)",
        [("station", ("1", "TEMP"), True)],
    ),
    ("y ~ x + (1 + x + z | g)", "y ~ x + (1 + x + z | g)", [("g", ("1", "x", "z"), True)]),
    ("y ~ x + (0 + x | g)", "y ~ x + (0 + x | g)", [("g", ("x",), True)]),
    ("y ~ x + (x - 1 | g)", "y ~ x + (0 + x | g)", [("g", ("x",), True)]),
    ("y ~ x + (f | g)", "y ~ x + (1 + f | g)", [("g", ("1", "f"), True)]),
    (
        "y ~ x + (x || g)",
        "y ~ x + (1 | g) + (0 + x | g)",
        [("g", ("1",), False), ("g", ("x",), False)],
    ),
    (
        "y ~ x + (x + z || g)",
        "y ~ x + (1 | g) + (0 + x | g) + (0 + z | g)",
        [("g", ("1",), False), ("g", ("x",), False), ("g", ("z",), False)],
    ),
    ("y ~ x + (0 + x || g)", "y ~ x + (0 + x | g)", [("g", ("x",), False)]),
    ("y ~ (1 | g)", "y ~ 1 + (1 | g)", [("g", ("1",), True)]),
    (
        "y ~ x + (1 | a) + (1 | b)",
        "y ~ x + (1 | a) + (1 | b)",
        [("a", ("1",), True), ("b", ("1",), True)],
    ),
    (
        "y ~ x + (1 | a/b)",
        "y ~ x + (1 | a) + (1 | a:b)",
        [("a", ("1",), True), ("a:b", ("1",), True)],
    ),
    (
        "y ~ x + (1 | a/b/c)",
        "y ~ x + (1 | a) + (1 | a:b) + (1 | a:b:c)",
        [("a", ("1",), True), ("a:b", ("1",), True), ("a:b:c", ("1",), True)],
    ),
    ("y ~ x + (1 | a:b)", "y ~ x + (1 | a:b)", [("a:b", ("1",), True)]),
    (
        "y ~ x + (x | a/b)",
        "y ~ x + (1 + x | a) + (1 + x | a:b)",
        [("a", ("1", "x"), True), ("a:b", ("1", "x"), True)],
    ),
    # two bar terms on one factor are separate blocks (lme4)
    (
        "y ~ x + (1 | g) + (0 + x | g)",
        "y ~ x + (1 | g) + (0 + x | g)",
        [("g", ("1",), True), ("g", ("x",), True)],
    ),
    ("y ~ 0 + x + (1 | g)", "y ~ 0 + x + (1 | g)", [("g", ("1",), True)]),
    ("y ~ x - 1 + (1 | g)", "y ~ x - 1 + (1 | g)", [("g", ("1",), True)]),
    ("y~x+(x|g)", "y ~ x + (1 + x | g)", [("g", ("1", "x"), True)]),
    ("log(y) ~ scale(x) + (1 | g)", "log(y) ~ scale(x) + (1 | g)", [("g", ("1",), True)]),
    ("y ~ x*z + (x:z | g)", "y ~ x*z + (1 + x:z | g)", [("g", ("1", "x:z"), True)]),
    ("y ~ I(x - 1) + (1 | g)", "y ~ I(x - 1) + (1 | g)", [("g", ("1",), True)]),
    (
        "y ~ x + (1 + I(x ** 2) | g)",
        "y ~ x + (1 + I(x ** 2) | g)",
        [("g", ("1", "I(x ** 2)"), True)],
    ),
    ("y ~ x", "y ~ x", []),
]


@pytest.mark.parametrize(("formula", "bambi", "blocks"), TRANSLATIONS)
def test_translation(formula, bambi, blocks):
    spec = build_spec(formula)
    assert spec.bambi_formula == bambi
    assert [(b.factor, b.terms, b.correlated) for b in spec.blocks] == blocks


def test_bambi_term_names_and_labels():
    spec = build_spec("y ~ TEMP + (TEMP | station)")
    (block,) = spec.blocks
    assert block.bambi_terms == ("1|station", "TEMP|station")
    assert block.labels == ("Intercept", "TEMP")


def test_correlated_false_and_dicts():
    spec = build_spec(
        "y ~ x + (x | a) + (x | b)", correlated={"b": False}, noncentered={"a": False}
    )
    a, b = spec.blocks
    assert (a.correlated, a.noncentered) == (True, False)
    assert (b.correlated, b.noncentered) == (False, "auto")  # the default, resolved in fh.model
    assert all(not blk.correlated for blk in build_spec("y ~ (x | a)", correlated=False).blocks)


def test_unknown_factor_in_option_dict():
    with pytest.raises(FormulaError, match=r"not in the formula.*\['a'\]"):
        build_spec("y ~ (1 | a)", noncentered={"station": False})


def test_bad_lkj_eta():
    with pytest.raises(PriorError, match="lkj_eta"):
        build_spec("y ~ (x | g)", lkj_eta=0)


# formula, message pattern, caret column (None: no caret check)
ERRORS = [
    ("y ~ x + (| g)", "Nothing before the bar", 9),
    ("y ~ x + (x | )", "No grouping factor", 12),
    ("y ~ x + (x | g", "never closed", 8),
    ("y ~ x + x | g)", "closes nothing", 13),
    ("y ~ x*(x | g)", "must stand alone", 9),
    ("y ~ x - (1 | g)", "must stand alone|cannot be subtracted", None),
    ("y ~ x + (1 | ID | g)", r"\(1 \| ID \| g\)' syntax", 16),
    ("y ~ x + (1 | gr(g, by = z))", "gr\\(\\) is not supported", None),
    ("y ~ s(x) + (1 | g)", "smooth terms", 4),
    ("y ~ mo(x) + (1 | g)", "monotonic", 4),
    ("y ~ x +", "A term is missing", 6),
    ("y x", "needs a response and a '~'", 0),
    ("~ x", "response", 0),
    ("y ~ x ~ z", "one '~'", 6),
    ("y ~ ", "Nothing right of", None),
    ("y ~ x + (1 | g) + (1 | g)", "appears twice", 18),
    ("y ~ x + (0 | g)", "has no effects", 8),
    ("y ~ x + (1 | g + h)", "not a name", None),
    ("y ~ x + (x +  | g)", "Cannot read the expression", None),
]


@pytest.mark.parametrize(("formula", "pattern", "caret"), ERRORS)
def test_errors(formula, pattern, caret):
    with pytest.raises(FormulaError, match=pattern) as info:
        build_spec(formula)
    err = info.value
    assert formula in str(err)  # the formula is shown
    if caret is not None:
        assert err.pos == caret
        lines = str(err).splitlines()
        assert lines[-1].index("^") - 4 == caret


def test_not_a_string():
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(42)


def test_parse_keeps_population_text():
    parsed = parse_formula("y ~ x + (x | g) + z")
    assert parsed.population == "x + z"
    assert [b.text for b in parsed.bars] == ["(x | g)"]
