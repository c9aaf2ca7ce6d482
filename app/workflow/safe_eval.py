"""The restricted expression environment for every Python snippet in a BPMN or DMN file.

SpiffWorkflow runs script tasks, gateway conditions, timer expressions, DMN cells and
message expressions with ``eval``/``exec``.  Each snippet is first checked against a small
AST whitelist (:func:`check_code`) and then run with empty builtins plus
:data:`SAFE_FUNCTIONS`.  The same check runs when a diagram is uploaded (see ``specs.py``).
"""

from __future__ import annotations

import ast
import datetime as _dt
from functools import lru_cache
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

__all__ = [
    "FORBIDDEN_NAMES",
    "SAFE_FUNCTIONS",
    "SAFE_METHODS",
    "SafeEnvironment",
    "SafeScriptEngine",
    "UnsafeExpressionError",
    "check_code",
    "make_script_engine",
]

#: Longest snippet accepted (characters); longer ones are a problem, not a slow parse.
MAX_SOURCE_LENGTH = 20_000


def _now() -> _dt.datetime:
    """The current time as an aware UTC datetime."""
    return _dt.datetime.now(_dt.UTC)


def _today() -> _dt.date:
    """Today's date in UTC."""
    return _now().date()


#: Functions a snippet may call by bare name (also the globals it runs with).
SAFE_FUNCTIONS: dict[str, Any] = {
    "len": len, "min": min, "max": max, "sum": sum, "abs": abs, "round": round,
    "sorted": sorted, "any": any, "all": all,
    "str": str, "int": int, "float": float, "bool": bool,
    "list": list, "dict": dict, "set": set, "tuple": tuple,
    "now": _now, "today": _today,
    "timedelta": _dt.timedelta, "date": _dt.date, "datetime": _dt.datetime,
}

#: Method names a snippet may call as ``obj.method(...)``.
SAFE_METHODS: frozenset[str] = frozenset({
    "get", "keys", "values", "items",
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith",
    "split", "join", "replace", "count", "index", "isdigit", "title", "casefold",
    "append", "extend", "copy", "total_seconds", "isoformat", "date",
})

#: Names rejected even when merely mentioned.
FORBIDDEN_NAMES: frozenset[str] = frozenset({
    "open", "eval", "exec", "compile", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "dir", "type", "object", "__import__", "breakpoint", "input",
    "help", "memoryview", "super", "classmethod", "staticmethod", "property",
})

_ALLOWED_NODES: tuple[type, ...] = (
    ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.Pass,
    ast.Delete, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Del, ast.Tuple, ast.List,
    ast.Dict, ast.Set, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare,
    ast.IfExp, ast.Subscript, ast.Slice, ast.JoinedStr, ast.FormattedValue, ast.Call,
    ast.keyword, ast.Attribute,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd,
    ast.UAdd, ast.USub, ast.Not, ast.Invert,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
)

# Helper nodes that only occur inside an already rejected node: not reported again.
_PARTS_OF_REJECTED: tuple[type, ...] = (
    ast.alias, ast.comprehension, ast.excepthandler, ast.arguments, ast.arg, ast.withitem,
    ast.match_case, ast.pattern,
)

_REJECTED_MESSAGES: dict[str, str] = {
    "Import": "import is not allowed", "ImportFrom": "import is not allowed",
    "Lambda": "lambda is not allowed",
    "FunctionDef": "function definitions are not allowed",
    "AsyncFunctionDef": "function definitions are not allowed",
    "ClassDef": "class definitions are not allowed",
    "For": "loops are not allowed (use a standard loop or a call activity)",
    "AsyncFor": "loops are not allowed (use a standard loop or a call activity)",
    "While": "loops are not allowed (use a standard loop or a call activity)",
    "ListComp": "comprehensions are not allowed", "SetComp": "comprehensions are not allowed",
    "DictComp": "comprehensions are not allowed",
    "GeneratorExp": "generator expressions are not allowed",
    "Global": "'global' is not allowed", "Nonlocal": "'nonlocal' is not allowed",
    "Try": "'try' is not allowed", "TryStar": "'try' is not allowed",
    "With": "'with' is not allowed", "AsyncWith": "'with' is not allowed",
    "Raise": "'raise' is not allowed", "Assert": "'assert' is not allowed",
    "Yield": "'yield' is not allowed", "YieldFrom": "'yield' is not allowed",
    "Await": "'await' is not allowed", "Return": "'return' is not allowed",
    "Break": "'break' is not allowed", "Continue": "'continue' is not allowed",
    "Starred": "unpacking with * is not allowed",
    "NamedExpr": "assignment expressions (:=) are not allowed",
    "AnnAssign": "annotated assignments are not allowed",
    "Match": "'match' is not allowed",
    "Pow": "the ** operator is not allowed", "LShift": "the << operator is not allowed",
    "MatMult": "the @ operator is not allowed",
}


class UnsafeExpressionError(Exception):
    """A snippet failed :func:`check_code`; ``problems`` says why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        # Spiff builds its error detail from args[0], so it must be a plain string.
        super().__init__(f"unsafe expression {source!r}: " + "; ".join(self.problems))


class _Checker(ast.NodeVisitor):
    """Collects whitelist violations; never raises for bad input."""

    def __init__(self, multiline: bool) -> None:
        self.problems: list[str] = []
        self.multiline = multiline

    def add(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", None)
        if self.multiline and line:
            message = f"line {line}: {message}"
        if message not in self.problems:
            self.problems.append(message)

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES + _PARTS_OF_REJECTED):
            name = type(node).__name__
            self.add(node, _REJECTED_MESSAGES.get(name, f"{name} is not allowed"))
        super().generic_visit(node)  # keep looking: report every problem at once

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("_") or node.id in FORBIDDEN_NAMES:
            self.add(node, f"name {node.id!r} is not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            self.add(node, f"attribute {node.attr!r} is not allowed")
        else:
            self.add(node, f"attribute {node.attr!r} is not allowed "
                           "(use x['key'] or x.get('key'); only listed methods may be called)")
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id.startswith("_") or func.id in FORBIDDEN_NAMES or func.id not in SAFE_FUNCTIONS:
                self.add(node, f"call to {func.id!r} is not allowed")
        elif isinstance(func, ast.Attribute):
            if func.attr.startswith("_"):
                self.add(func, f"attribute {func.attr!r} is not allowed")
            elif func.attr not in SAFE_METHODS:
                self.add(func, f"method {func.attr!r} is not allowed")
            self.visit(func.value)
        else:
            self.add(node, "only calls to listed functions and methods are allowed")
            self.visit(func)
        for arg in node.args:
            self.visit(arg)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.add(keyword, "unpacking with ** is not allowed")
            self.visit(keyword.value)

    def visit_Dict(self, node: ast.Dict) -> None:
        if any(key is None for key in node.keys):
            self.add(node, "unpacking with ** is not allowed")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        if node.format_spec is not None:
            self.add(node, "format specifications in f-strings are not allowed")
        self.visit(node.value)


@lru_cache(maxsize=4096)
def _check(source: str, mode: str) -> tuple[str, ...]:
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    if len(source) > MAX_SOURCE_LENGTH:
        return (f"code is too long ({len(source)} characters; the limit is {MAX_SOURCE_LENGTH})",)
    try:
        tree = ast.parse(_normalise(source, mode), mode=mode)
    except SyntaxError as exc:
        return (f"syntax error at line {exc.lineno or 1}: {exc.msg}",)
    except (ValueError, RecursionError, MemoryError) as exc:
        return (f"cannot parse code: {str(exc) or type(exc).__name__}",)
    checker = _Checker(multiline=mode == "exec" and "\n" in source.strip())
    try:
        checker.visit(tree)
    except RecursionError:
        return ("code is too deeply nested",)
    return tuple(checker.problems)


def _normalise(source: str, mode: str) -> str:
    # eval() strips surrounding whitespace itself; BPMN text nodes often carry newlines.
    return source.strip() if mode == "eval" else source


def check_code(source: str, mode: str = "eval") -> list[str]:
    """Return the problems that make ``source`` unsafe or invalid (empty list = safe).

    ``mode`` is ``"eval"`` for expressions and ``"exec"`` for scripts.
    """
    if not isinstance(source, str):
        return [f"expected code as text, got {type(source).__name__}"]
    return list(_check(source, mode))


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str):
    return compile(_normalise(source, mode), "<string>", mode)


def _checked_code(source: str, mode: str):
    problems = check_code(source, mode)
    if problems:
        raise UnsafeExpressionError(source, problems)
    return _compile(source, mode)


def _visible(values: dict | None) -> dict[str, Any]:
    """What a snippet may see of a data dict: no private names, no callables."""
    return {k: v for k, v in (values or {}).items()
            if isinstance(k, str) and not k.startswith("_") and not callable(v)}


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Runs checked snippets with empty builtins; replaces Spiff's TaskDataEnvironment."""

    def __init__(self) -> None:
        super().__init__(dict(SAFE_FUNCTIONS))

    def _globals(self, context: dict | None, external_context: dict | None) -> dict[str, Any]:
        scope = dict(self.globals)
        scope.update(_visible(external_context))
        scope.update(_visible(context))
        scope["__builtins__"] = {}  # last, so data can never provide builtins
        return scope

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        """Check and evaluate an expression against task data (``context``)."""
        code = _checked_code(expression, "eval")
        return eval(code, self._globals(context, external_context))  # noqa: S307

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        """Check and run a script; copy the variables it assigned back into ``context``."""
        code = _checked_code(script, "exec")
        scope = self._globals(context, external_context)
        before = dict(scope)
        exec(code, scope)  # noqa: S102
        for key, value in scope.items():
            if key == "__builtins__" or key.startswith("_") or callable(value):
                continue
            if key not in before or before[key] is not value:
                context[key] = value
        for key in _visible(context):
            if key in before and key not in scope:  # removed with ``del``
                del context[key]
        return True

    def call_service(self, context: dict, **kwargs: Any) -> Any:
        """Service tasks go through :meth:`SafeScriptEngine.call_service` instead."""
        raise NotImplementedError("service tasks run through the service-task registry")


class SafeScriptEngine(PythonScriptEngine):
    """Spiff's script engine with the safe environment and a safety check in ``validate``."""

    def __init__(self, environment: SafeEnvironment | None = None) -> None:
        super().__init__(environment=environment or SafeEnvironment())

    def validate(self, expression: str) -> None:
        """Raise SyntaxError for unparsable code (Spiff's DMN engine relies on that),
        UnsafeExpressionError for code that parses but is not allowed."""
        super().validate(expression)
        problems = check_code(expression, "exec")
        if problems:
            raise UnsafeExpressionError(expression, problems)


    def call_service(self, task, operation_name: str, operation_params: dict, **_kwargs: Any) -> str:
        """Dispatch a service task to the handler registered for its operator.

        (Spiff's own implementation has a broken error path; errors here surface as
        WorkflowTaskException like any other task failure.)"""
        from app.workflow import service_tasks

        try:
            return service_tasks.call(operation_name, operation_params, task.data)
        except Exception as exc:
            raise WorkflowTaskException(f"service task '{operation_name}' failed: {exc}",
                                        task=task, exception=exc) from exc


def make_script_engine() -> SafeScriptEngine:
    """A fresh safe script engine to attach to a (new or loaded) BpmnWorkflow."""
    return SafeScriptEngine()
