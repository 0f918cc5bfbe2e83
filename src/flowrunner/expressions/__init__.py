"""``${...}`` expressions in flow parameters.

Compile a parameter value once with ``compile_value`` (or one string with
``compile_template``), then resolve it per node visit against a scope mapping
(``input``, ``shared``, ``results``, ``params``, ``execution``, ``error``, ``secrets``).

- A string that is exactly one expression keeps the value's type (``"${input.count}"`` → int).
- Otherwise each value is interpolated as text: ``None`` → ``""``, dict/list → compact JSON,
  booleans → ``true``/``false``.
- Plain paths (``input.a.b``, ``results.fetch.body[0].id``, ``shared["k"]``,
  ``input.items[-1]``) are resolved natively; a missing key resolves to ``None`` (like JS
  ``?.``). Anything else is JavaScript: operators, literals and member access on primitive
  values are evaluated natively with V8's exact results (``jsnative``), the rest is delegated
  to a ``JSEvaluator`` (the sandbox).
- ``$${`` is a literal ``${``.

This package imports nothing from flowrunner except ``flowrunner.errors``.
"""

from flowrunner.expressions.evaluate import (
    SCOPE_NAMES,
    Expression,
    JSEvaluator,
    Resolver,
    Static,
    compile_template,
    compile_value,
    thaw,
    to_text,
)
from flowrunner.expressions.jsnative import (
    NotNative,
    Program,
    compile_expression,
    compile_return,
)
from flowrunner.expressions.paths import parse_path, resolve_path
from flowrunner.expressions.template import (
    Segment,
    TemplateSyntaxError,
    has_expression,
    split_template,
)

__all__ = [
    "SCOPE_NAMES",
    "Expression",
    "JSEvaluator",
    "NotNative",
    "Program",
    "Resolver",
    "Segment",
    "Static",
    "TemplateSyntaxError",
    "compile_expression",
    "compile_return",
    "compile_template",
    "compile_value",
    "has_expression",
    "parse_path",
    "resolve_path",
    "split_template",
    "thaw",
    "to_text",
]
