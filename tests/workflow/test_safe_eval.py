"""The restricted expression environment: AST whitelist and the safe script engine."""

import builtins
from datetime import UTC, date, datetime, timedelta

import pytest

from app.workflow.safe_eval import (
    SAFE_FUNCTIONS,
    SafeEnvironment,
    SafeScriptEngine,
    UnsafeExpressionError,
    check_code,
    make_script_engine,
)

# --- check_code: accepted -------------------------------------------------------------

ALLOWED_EXPRESSIONS = [
    "age < 18",
    "'GBV' in services",
    "'GBV' not in services",
    "reply.get('decision') == 'ACCEPT'",
    "reply['answers']['age'] >= 18 and not flagged",
    "x is None or x is not None",
    "'high' if score > 3 else 'normal'",
    "len(services) > 0",
    "sorted(items, reverse=True)[:3]",
    "max(a, b) - min(a, b) + abs(c) // 2 % 7",
    "round(score / 3, 1)",
    "name.strip().lower().startswith('a')",
    "', '.join(services)",
    "str.join(', ', services)",
    "f'{first} {last}'",
    "f'{name!r}'",
    "{'a': 1, 'b': [1, 2], 'c': (3,), 'd': {4}}",
    "now() - timedelta(hours=48) > deadline",
    "today().isoformat()",
    "date(2024, 1, 31)",
    "(now() - started).total_seconds() > 3600",
    '"PT48H"',
    "PT48H",
    "-x + +y",
    "flags & 1 | 2 ^ 4 >> 1",
    "\n  age < 18\n",  # BPMN text nodes often carry whitespace
]


@pytest.mark.parametrize("source", ALLOWED_EXPRESSIONS)
def test_allowed_expressions(source):
    assert check_code(source) == []


ALLOWED_SCRIPTS = [
    "urgency = 'high' if score > 3 else 'normal'",
    "case['status'] = 'open'",
    "count += 1",
    "a, b = 1, 2",
    "if age < 18:\n    minor = True\nelif age > 65:\n    senior = True\nelse:\n    pass",
    "services.append('GBV')",
    "del tmp",
    "del case['status']",
    "'a docstring'",
]


@pytest.mark.parametrize("source", ALLOWED_SCRIPTS)
def test_allowed_scripts(source):
    assert check_code(source, "exec") == []


# --- check_code: rejected -------------------------------------------------------------

REJECTED_EXPRESSIONS = [
    ("__import__('os').system('id')", "call to '__import__' is not allowed"),
    ("__import__('os').system('id')", "method 'system' is not allowed"),
    ("().__class__.__base__.__subclasses__()", "attribute '__class__' is not allowed"),
    ("().__class__.__base__.__subclasses__()", "attribute '__subclasses__' is not allowed"),
    ("x.__class__", "attribute '__class__' is not allowed"),
    ("x._private", "attribute '_private' is not allowed"),
    ("_secret", "name '_secret' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("open('/etc/passwd')", "call to 'open' is not allowed"),
    ("eval('1')", "call to 'eval' is not allowed"),
    ("exec('x = 1')", "call to 'exec' is not allowed"),
    ("getattr(x, 'y')", "call to 'getattr' is not allowed"),
    ("type(x)", "call to 'type' is not allowed"),
    ("isinstance(x, int)", "call to 'isinstance' is not allowed"),
    ("print(x)", "call to 'print' is not allowed"),
    ("unknown_function(1)", "call to 'unknown_function' is not allowed"),
    ("open", "name 'open' is not allowed"),
    ("globals", "name 'globals' is not allowed"),
    ("x if vars else y", "name 'vars' is not allowed"),
    ("(lambda: 1)()", "lambda is not allowed"),
    ("(lambda: 1)()", "only calls to listed functions and methods are allowed"),
    ("x['f']()", "only calls to listed functions and methods are allowed"),
    ("[x for x in y]", "comprehensions are not allowed"),
    ("{k: v for k, v in y}", "comprehensions are not allowed"),
    ("sum(x for x in y)", "generator expressions are not allowed"),
    ("2 ** 100000000", "the ** operator is not allowed"),
    ("1 << 100000000", "the << operator is not allowed"),
    ("reply.decision", "attribute 'decision' is not allowed"),
    ("'{0.__class__}'.format(x)", "method 'format' is not allowed"),
    ("'{x}'.format_map(d)", "method 'format_map' is not allowed"),
    ("now().strftime('%Y')", "method 'strftime' is not allowed"),
    ("datetime.now()", "method 'now' is not allowed"),
    ("f'{x:>1000000000}'", "format specifications in f-strings are not allowed"),
    ("max(*values)", "unpacking with * is not allowed"),
    ("dict(**values)", "unpacking with ** is not allowed"),
    ("{**values}", "unpacking with ** is not allowed"),
    ("(y := 1)", "assignment expressions (:=) are not allowed"),
    ("age <", "syntax error at line 1"),
]


@pytest.mark.parametrize(("source", "message"), REJECTED_EXPRESSIONS)
def test_rejected_expressions(source, message):
    assert any(message in problem for problem in check_code(source))


REJECTED_SCRIPTS = [
    ("import os", "import is not allowed"),
    ("from os import system", "import is not allowed"),
    ("def f():\n    pass", "function definitions are not allowed"),
    ("class C:\n    pass", "class definitions are not allowed"),
    ("for i in x:\n    pass", "loops are not allowed"),
    ("while True:\n    pass", "loops are not allowed"),
    ("global x", "'global' is not allowed"),
    ("try:\n    pass\nexcept Exception:\n    pass", "'try' is not allowed"),
    ("with x:\n    pass", "'with' is not allowed"),
    ("raise ValueError", "'raise' is not allowed"),
    ("assert x", "'assert' is not allowed"),
    ("x: int = 1", "annotated assignments are not allowed"),
    ("x.y = 1", "attribute 'y' is not allowed"),
    ("del x.y", "attribute 'y' is not allowed"),
    ("__import__ = 1", "name '__import__' is not allowed"),
    ("a, *b = c", "unpacking with * is not allowed"),
]


@pytest.mark.parametrize(("source", "message"), REJECTED_SCRIPTS)
def test_rejected_scripts(source, message):
    assert any(message in problem for problem in check_code(source, "exec"))


def test_expression_mode_rejects_statements():
    assert check_code("x = 1")[0].startswith("syntax error at line 1")


def test_syntax_error_reports_its_line():
    assert check_code("a = 1\nb = (", "exec")[0].startswith("syntax error at line 2")


def test_multiline_script_problems_carry_line_numbers():
    assert check_code("a = 1\nimport os", "exec") == ["line 2: import is not allowed"]


def test_every_problem_is_reported_once():
    problems = check_code("open(x) + open(y) + x.__class__ + y.__class__")
    assert problems == ["call to 'open' is not allowed", "attribute '__class__' is not allowed"]


def test_non_text_and_oversized_code_are_problems():
    assert check_code(None) == ["expected code as text, got NoneType"]
    assert "too long" in check_code("1 + " * 10_000 + "1")[0]


def test_results_are_cached_but_not_shared():
    first = check_code("open(x)")
    first.append("mutated")
    assert check_code("open(x)") == ["call to 'open' is not allowed"]


def test_isinstance_and_forbidden_names_are_not_safe_functions():
    assert "isinstance" not in SAFE_FUNCTIONS and "open" not in SAFE_FUNCTIONS


# --- SafeEnvironment ------------------------------------------------------------------


@pytest.fixture
def env():
    return SafeEnvironment()


def test_evaluate_sees_task_data(env):
    assert env.evaluate("age < 18 and 'GBV' in services", {"age": 12, "services": ["GBV"]}) is True


def test_evaluate_sees_external_context_but_task_data_wins(env):
    assert env.evaluate("a + b", {"a": 1}, {"a": 100, "b": 2}) == 3


def test_evaluate_hides_private_and_callable_data(env):
    with pytest.raises(UnsafeExpressionError):
        env.evaluate("_secret", {"_secret": 1})
    with pytest.raises(TypeError):  # the data value shadows the helper, callables never reach a snippet
        env.evaluate("date(2024, 1, 1)", {"date": "2024-01-01"})
    with pytest.raises(NameError):
        env.evaluate("helper", {"helper": print})


def test_builtins_are_empty_even_if_data_tries_to_provide_them(env):
    with pytest.raises(NameError):
        env.evaluate("print", {"__builtins__": vars(builtins)})


def test_evaluate_rejects_unsafe_code_before_running_it(env):
    with pytest.raises(UnsafeExpressionError) as info:
        env.evaluate("().__class__.__base__.__subclasses__()", {})
    assert "attribute '__class__' is not allowed" in info.value.problems
    assert isinstance(info.value.args[0], str)  # Spiff builds messages from args[0]


def test_date_helpers(env):
    assert env.evaluate("now()", {}).tzinfo == UTC
    assert env.evaluate("today()", {}) == datetime.now(UTC).date()
    assert env.evaluate("timedelta(hours=48)", {}) == timedelta(hours=48)
    assert env.evaluate("date(2024, 2, 1) - date(2024, 1, 1)", {}) == timedelta(days=31)


def test_execute_copies_back_assigned_variables(env):
    data = {"score": 5}
    assert env.execute("urgency = 'high' if score > 3 else 'normal'", data) is True
    assert data == {"score": 5, "urgency": "high"}


def test_execute_does_not_copy_back_functions_or_builtins(env):
    data = {}
    env.execute("f = len\nn = len([1, 2])", data)
    assert data == {"n": 2}


def test_execute_mutates_nested_data_in_place(env):
    data = {"case": {"status": "new"}, "services": []}
    env.execute("case['status'] = 'open'\nservices.append('GBV')", data)
    assert data == {"case": {"status": "open"}, "services": ["GBV"]}


def test_execute_del_removes_a_variable(env):
    data = {"tmp": 1, "keep": 2}
    env.execute("del tmp", data)
    assert data == {"keep": 2}


def test_execute_leaves_private_data_alone(env):
    data = {"_internal": "x", "a": 1}
    env.execute("b = a + 1", data)
    assert data == {"_internal": "x", "a": 1, "b": 2}


def test_execute_rejects_unsafe_script_without_touching_data(env, tmp_path):
    data = {"a": 1}
    target = tmp_path / "pwned"
    with pytest.raises(UnsafeExpressionError):
        env.execute(f"b = 2\n__import__('os').system('touch {target}')", data)
    assert data == {"a": 1}
    assert not target.exists()


def test_execute_failure_does_not_apply_partial_assignments(env):
    data = {"a": 1}
    with pytest.raises(ZeroDivisionError):
        env.execute("b = 2\nc = a / 0", data)
    assert data == {"a": 1}


def test_call_service_is_not_supported(env):
    with pytest.raises(NotImplementedError):
        env.call_service({}, operation_name="x")


# --- SafeScriptEngine -----------------------------------------------------------------


def test_make_script_engine_returns_fresh_safe_engines():
    one, two = make_script_engine(), make_script_engine()
    assert isinstance(one, SafeScriptEngine) and isinstance(one.environment, SafeEnvironment)
    assert one is not two


def test_validate_raises_syntax_error_for_unparsable_code():
    # Spiff's DMN engine relies on SyntaxError to turn "< 18" into "age < 18".
    with pytest.raises(SyntaxError):
        make_script_engine().validate("< 18")
    make_script_engine().validate("v < 18")


def test_validate_rejects_unsafe_code():
    with pytest.raises(UnsafeExpressionError, match="__import__"):
        make_script_engine().validate("__import__('os')")


def test_date_values_in_task_data_work_with_helpers(env):
    data = {"opened": date(2024, 1, 1)}
    env.execute("due = opened + timedelta(days=7)\nlate = today() > due", data)
    assert data["due"] == date(2024, 1, 8) and data["late"] is True
