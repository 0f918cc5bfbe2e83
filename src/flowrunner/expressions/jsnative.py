"""JavaScript expressions evaluated without V8, with exactly V8's results.

The subset (anything else is left to V8, unchanged):

- literals: numbers (decimal, ``0x``/``0o``/``0b``), ``'...'``/``"..."`` strings, ``true``,
  ``false``, ``null``, ``undefined``, ``NaN``, ``Infinity``;
- the scope's names (``input``, ``results``, ...) and member access on them: ``a.b``,
  ``a["b"]``, ``a[expr]``, ``a?.b``, ``a?.[expr]``, ``.length`` of arrays and strings;
- unary ``-`` ``+`` ``!`` ``typeof``; ``*`` ``/`` ``%``; ``+`` ``-``; ``<`` ``<=`` ``>``
  ``>=``; ``==`` ``!=`` ``===`` ``!==``; ``&&`` ``||`` ``??`` (value-returning); ``? :``;
  parentheses.

``compile_expression`` parses once and returns a ``Program`` (a tree of closures) or ``None``
when the text is outside the subset; the parser accepts only text that is valid JavaScript
and parses it as JavaScript does, so a ``Program`` never needs V8's syntax check. At run time a
``Program`` raises ``NotNative`` when the values make the answer V8's business (an object in
arithmetic, a property of ``undefined``, a method...), and the caller evaluates the same code
in V8. ``compile_return`` does the same for a function body that is one ``return <expr>``,
where the returned value may also be an object or array literal built of such expressions
(``return {n: input.n + 1, tags: [input.a, "x"]};``): keys are names or quoted strings, never
digits-only (V8 orders integer keys first), ``__proto__`` (it sets the prototype) or twice
the same; values are expressions of the subset or nested literals. No spread, computed key,
shorthand, method, hole or getter. Its value is the JSON V8's would become: a property whose
value is ``undefined`` is left out, an ``undefined`` element is ``null``; an object or array
taken from the scope (``{o: input.o}``) is left to V8, since its copy through JSON is V8's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flowrunner.expressions.jsvalues import (
    UNDEFINED,
    NotNative,
    add,
    divide,
    from_python,
    get_property,
    is_less,
    loose_equals,
    remainder,
    strict_equals,
    to_number,
    to_python,
    to_string,
    truthy,
    type_of,
)

__all__ = ["NotNative", "Program", "compile_expression", "compile_return"]

Scope = Mapping[str, Any]
Eval = Callable[[Scope], Any]

# --- tokens ----------------------------------------------------------------------------------

_SPACE = re.compile(r"[ \t\n\r\v\f]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+"
    r"|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
)
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Every punctuator JavaScript has, longest first, so that maximal munch splits text as V8
# does (``a ++b`` is ``a++ b``, not ``a + +b``); those outside the subset stop the parse.
_ALL_PUNCTUATORS = (
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "=>",
    "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "**", "<<", ">>", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "{", "}", "(", ")", "[", "]", ";", ",", "<",
    ">", "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "?", ":", "=", ".", "@", "#",
)  # fmt: skip
_PUNCTUATORS = sorted(_ALL_PUNCTUATORS, key=len, reverse=True)
_SUPPORTED = frozenset((
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "<", ">", "+", "-", "*",
    "/", "%", "!", "?", ":", "(", ")", "[", "]", ".", "{", "}", ",",
))  # fmt: skip
# A string longer than this in a literal's result is left to V8: its result limit
# (FLOWRUNNER_SCRIPT_MAX_RESULT_BYTES) decides whether such a result is allowed.
_LONG_TEXT = 65_536
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
_HEX = re.compile(r"[0-9a-fA-F]+")

NUM, STR, NAME, PUNCT, END = "num", "str", "name", "punct", "end"
Token = tuple[str, Any]


class _Unsupported(Exception):  # control flow of the parser, never escapes
    pass


def _string(text: str, i: int) -> tuple[str, int]:
    """The value of the string literal starting at ``text[i]`` and the index after it."""
    quote = text[i]
    i += 1
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch in "\n\r":
            raise _Unsupported  # a SyntaxError (no line continuations here either)
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        i += 2
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
        elif esc == "0" and not (i < n and text[i].isdigit()):
            out.append("\0")
        elif esc == "x":
            digits = text[i : i + 2]
            if len(digits) != 2 or not _HEX.fullmatch(digits):
                raise _Unsupported
            out.append(chr(int(digits, 16)))
            i += 2
        elif esc == "u":
            if text.startswith("{", i):
                end = text.find("}", i)
                digits = text[i + 1 : end] if end > 0 else ""
                i = end + 1
            else:
                digits = text[i : i + 4]
                i += 4
                if len(digits) != 4:
                    raise _Unsupported
            if not _HEX.fullmatch(digits) or int(digits, 16) > 0x10FFFF:
                raise _Unsupported
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF:
                raise _Unsupported  # surrogate halves: UTF-16 pairing is V8's business
            out.append(chr(code))
        elif esc.isdigit() or esc in "\n\r\u2028\u2029":
            raise _Unsupported  # octal escapes (a SyntaxError in strict mode), continuations
        else:
            out.append(esc)  # a NonEscapeCharacter stands for itself: \' \" \\ \$ ...
    raise _Unsupported  # unterminated


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while True:
        i = _SPACE.match(text, i).end()  # type: ignore[union-attr]  # matches the empty string
        if i >= n:
            tokens.append((END, None))
            return tokens
        ch = text[i]
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            if m is None:
                raise _Unsupported
            i = m.end()
            # "1n", "1_000", "08", "3in", "1.5.5": BigInt, separators, legacy octal (a strict
            # mode error), an identifier straight after a number (an error)...
            if i < n and (text[i].isalnum() or text[i] in "_$\\."):
                raise _Unsupported
            literal = m.group()
            if literal[:2].lower() in ("0x", "0o", "0b"):
                base = {"x": 16, "o": 8, "b": 2}[literal[1].lower()]
                try:
                    value = float(int(literal[2:], base))
                except OverflowError:
                    value = float("inf")
            else:
                value = float(literal)  # correctly rounded, as V8 reads a literal
            tokens.append((NUM, value))
        elif ch in "'\"":
            value_s, i = _string(text, i)
            tokens.append((STR, value_s))
        elif ch.isascii() and (ch.isalpha() or ch in "_$"):
            m = _IDENT.match(text, i)
            assert m is not None  # the first character matches
            i = m.end()
            if i < n and (not text[i].isascii() or text[i] == "\\"):
                raise _Unsupported  # Unicode identifiers and escapes
            tokens.append((NAME, m.group()))
        else:
            if text.startswith(("//", "/*"), i):
                raise _Unsupported  # comments
            if text.startswith("?.", i) and i + 2 < n and text[i + 2].isdigit():
                punct = "?"  # "a?.5:1" is a conditional, not optional chaining
            else:
                punct = next((p for p in _PUNCTUATORS if text.startswith(p, i)), "")
            if punct not in _SUPPORTED:
                raise _Unsupported
            i += len(punct)
            tokens.append((PUNCT, punct))


# --- parse straight into closures ------------------------------------------------------------

_LITERAL_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": UNDEFINED,
    "NaN": float("nan"),
    "Infinity": float("inf"),
}
_EQUALITY = ("==", "!=", "===", "!==")
_RELATIONAL = ("<", ">", "<=", ">=")


def _constant(value: Any) -> Eval:
    return lambda scope: value


def _root(name: str) -> Eval:
    def root(scope: Scope) -> Any:
        try:
            value = scope[name]
        except KeyError:
            raise NotNative from None  # a ReferenceError, as V8 will say
        return from_python(value)

    return root


class _Parser:
    __slots__ = ("names", "pos", "tokens")

    def __init__(self, tokens: list[Token], names: frozenset[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.names = names

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, *puncts: str) -> str | None:
        kind, value = self.tokens[self.pos]
        if kind == PUNCT and value in puncts:
            return value  # type: ignore[no-any-return]
        return None

    def expect(self, punct: str) -> None:
        if self.at(punct) is None:
            raise _Unsupported
        self.pos += 1

    # Expression := ConditionalExpression (assignment, arrows, yield and commas are out).
    def expression(self) -> Eval:
        test = self.short_circuit()
        if self.at("?") is None:
            return test
        self.pos += 1
        then = self.expression()
        self.expect(":")
        otherwise = self.expression()
        return lambda s: then(s) if truthy(test(s)) else otherwise(s)

    def short_circuit(self) -> Eval:
        # `??` does not mix with `&&`/`||` without parentheses (a SyntaxError in JavaScript).
        left = self.equality()
        if self.at("??"):
            while self.at("??"):
                self.pos += 1
                left = _coalesce(left, self.equality())
            if self.at("&&", "||"):
                raise _Unsupported
            return left
        while self.at("&&"):
            self.pos += 1
            left = _and(left, self.equality())
        while self.at("||"):
            self.pos += 1
            right = self.equality()
            while self.at("&&"):
                self.pos += 1
                right = _and(right, self.equality())
            left = _or(left, right)
        if self.at("??"):
            raise _Unsupported
        return left

    def equality(self) -> Eval:
        left = self.relational()
        while op := self.at(*_EQUALITY):
            self.pos += 1
            left = _binary(op, left, self.relational())
        return left

    def relational(self) -> Eval:
        left = self.additive()
        while op := self.at(*_RELATIONAL):
            self.pos += 1
            left = _binary(op, left, self.additive())
        return left

    def additive(self) -> Eval:
        left = self.multiplicative()
        while op := self.at("+", "-"):
            self.pos += 1
            left = _binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Eval:
        left = self.unary()
        while op := self.at("*", "/", "%"):
            self.pos += 1
            left = _binary(op, left, self.unary())
        return left

    def unary(self) -> Eval:
        op = self.at("-", "+", "!")
        if op is None and self.peek() == (NAME, "typeof"):
            op = "typeof"
        if op is None:
            return self.member()
        self.pos += 1
        operand = self.unary()
        if op == "-":
            return lambda s: -to_number(operand(s))
        if op == "+":
            return lambda s: to_number(operand(s))
        if op == "!":
            return lambda s: not truthy(operand(s))
        return lambda s: type_of(operand(s))

    def member(self) -> Eval:
        target = self.primary()
        chained = False  # an optional chain: a nullish base ends it with undefined
        while op := self.at(".", "?.", "["):
            self.pos += 1
            optional = op == "?."
            chained |= optional
            if optional and self.at("["):
                self.pos += 1
                op = "["
            if op == "[":
                key = self.expression()
                self.expect("]")
                target = _computed(target, key, optional)
            else:
                kind, name = self.take()
                if kind != NAME:
                    raise _Unsupported  # "?.(" calls, "a.#x", "a.1"...
                target = _dotted(target, name, optional)
        if self.at("("):
            raise _Unsupported  # a call: V8's
        return _chain_end(target) if chained else target

    def primary(self) -> Eval:
        kind, value = self.take()
        if kind in (NUM, STR):
            return _constant(value)
        if kind == NAME:
            if value in _LITERAL_NAMES:
                return _constant(_LITERAL_NAMES[value])
            if value in self.names:
                return _root(value)
            raise _Unsupported  # globals (Math, JSON...), keywords, unknown names
        if (kind, value) == (PUNCT, "("):
            inner = self.expression()
            self.expect(")")
            return inner
        raise _Unsupported  # array/object literals, regexes, templates, `new`...

    # A returned value: an object or array literal (of such values), or an expression; it
    # evaluates straight to the JSON value V8's result would become.
    def result(self) -> Eval:
        if self.at("{"):
            self.pos += 1
            return self.object_literal()
        if self.at("["):
            self.pos += 1
            return self.array_literal()
        return _json_leaf(self.expression())

    def object_literal(self) -> Eval:
        entries: list[tuple[str, Eval]] = []
        while not self.at("}"):
            kind, key = self.take()
            if kind not in (NAME, STR) or key == "__proto__" or key.isdigit():
                raise _Unsupported  # computed, numeric, spread, shorthand...; see the module
            if any(key == seen for seen, _ in entries):
                raise _Unsupported
            self.expect(":")
            entries.append((key, self.result()))
            if self.at(",") is None:
                break
            self.pos += 1
        self.expect("}")

        def build(s: Scope) -> Any:
            out = {}
            for key, value in entries:
                item = value(s)
                if item is not _OMITTED:
                    out[key] = item
            return out

        return build

    def array_literal(self) -> Eval:
        elements: list[Eval] = []
        while not self.at("]"):
            elements.append(self.result())  # a hole (`[1,,2]`) or spread stops the parse
            if self.at(",") is None:
                break
            self.pos += 1
        self.expect("]")

        def build(s: Scope) -> Any:
            return [None if item is _OMITTED else item for item in (e(s) for e in elements)]

        return build


_SKIP: Any = object()  # an optional chain that met null/undefined
_OMITTED: Any = object()  # `undefined` in a literal: no property, a null element


def _json_leaf(evaluate: Eval) -> Eval:
    def leaf(s: Scope) -> Any:
        value = evaluate(s)
        if value is UNDEFINED:
            return _OMITTED
        value = to_python(value)  # NotNative for an object or array of the scope
        if type(value) is str and len(value) > _LONG_TEXT:
            raise NotNative
        return value

    return leaf


def _dotted(target: Eval, name: str, optional: bool) -> Eval:
    if not optional:

        def dotted(s: Scope) -> Any:
            base = target(s)
            if base is _SKIP:
                return _SKIP
            if type(base) is dict and name in base:  # the common case, without calls
                return from_python(base[name])
            return get_property(base, name)

        return dotted

    def dotted_optional(s: Scope) -> Any:
        base = target(s)
        if base is _SKIP or base is None or base is UNDEFINED:
            return _SKIP
        return get_property(base, name)

    return dotted_optional


def _computed(target: Eval, key: Eval, optional: bool) -> Eval:
    def computed(s: Scope) -> Any:
        base = target(s)
        if base is _SKIP or (optional and (base is None or base is UNDEFINED)):
            return _SKIP
        return get_property(base, to_string(key(s)))

    return computed


def _chain_end(evaluate: Eval) -> Eval:
    """Where an optional chain ends, a short-circuited chain is ``undefined``."""

    def end(s: Scope) -> Any:
        value = evaluate(s)
        return UNDEFINED if value is _SKIP else value

    return end


def _coalesce(left: Eval, right: Eval) -> Eval:
    def coalesce(s: Scope) -> Any:
        value = left(s)
        return right(s) if value is None or value is UNDEFINED else value

    return coalesce


def _and(left: Eval, right: Eval) -> Eval:
    def and_(s: Scope) -> Any:
        value = left(s)
        return right(s) if truthy(value) else value

    return and_


def _or(left: Eval, right: Eval) -> Eval:
    def or_(s: Scope) -> Any:
        value = left(s)
        return value if truthy(value) else right(s)

    return or_


def _plus(a: Any, b: Any) -> Any:
    kind = type(a)
    if kind is type(b) and (kind is float or kind is str):  # the common cases, inline
        return a + b
    return add(a, b)


def _minus(a: Any, b: Any) -> float:
    return to_number(a) - to_number(b)


def _times(a: Any, b: Any) -> float:
    return to_number(a) * to_number(b)


def _divide(a: Any, b: Any) -> float:
    return divide(to_number(a), to_number(b))


def _remainder(a: Any, b: Any) -> float:
    return remainder(to_number(a), to_number(b))


def _less(a: Any, b: Any) -> bool:
    return is_less(a, b) is True


def _greater(a: Any, b: Any) -> bool:
    return is_less(b, a) is True


def _less_equal(a: Any, b: Any) -> bool:
    return is_less(b, a) is False  # undefined (NaN) is false too


def _greater_equal(a: Any, b: Any) -> bool:
    return is_less(a, b) is False


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _plus,
    "-": _minus,
    "*": _times,
    "/": _divide,
    "%": _remainder,
    "<": _less,
    ">": _greater,
    "<=": _less_equal,
    ">=": _greater_equal,
    "==": loose_equals,
    "!=": lambda a, b: not loose_equals(a, b),
    "===": strict_equals,
    "!==": lambda a, b: not strict_equals(a, b),
}


def _binary(op: str, left: Eval, right: Eval) -> Eval:
    apply = _OPERATORS[op]
    return lambda s: apply(left(s), right(s))


# --- programs --------------------------------------------------------------------------------


class Program:
    """A natively evaluable expression: ``evaluate(scope)`` gives what V8's evaluation would
    give after its JSON round trip, or raises ``NotNative``."""

    __slots__ = ("_evaluate", "_returned", "code")

    def __init__(self, code: str, evaluate: Eval, *, returned: bool = False) -> None:
        self.code = code
        self._evaluate = evaluate
        self._returned = returned  # `Parser.result`: evaluates to JSON values already

    def evaluate(self, scope: Scope) -> Any:
        try:
            value = self._evaluate(scope)
            if self._returned:
                return None if value is _OMITTED else value
            return to_python(value)
        except RecursionError:
            # `1+1+...+1` parses iteratively but nests its closures: thousands of terms
            # overflow Python's stack. V8 has a deeper one.
            raise NotNative from None

    def __repr__(self) -> str:
        return f"Program({self.code!r})"


def _parse(code: str, names: frozenset[str], *, returned: bool = False) -> Eval | None:
    try:
        parser = _Parser(tokenize(code), names)
        evaluate = parser.result() if returned else parser.expression()
        if parser.peek()[0] != END:
            return None
    except (_Unsupported, IndexError, ValueError, RecursionError):
        return None
    return evaluate


def compile_expression(code: str, names: frozenset[str]) -> Program | None:
    """The native program of expression ``code`` (``names`` are the scope's roots), or
    ``None`` when V8 must evaluate it."""
    evaluate = _parse(code, names)
    return None if evaluate is None else Program(code, evaluate)


_RETURN = re.compile(r"[ \t\n\r\v\f]*return(?![A-Za-z0-9_$\\])[ \t\v\f]*")
_TRAILER = re.compile(r"[ \t\n\r\v\f]*;?[ \t\n\r\v\f]*\Z")


def compile_return(body: str, names: frozenset[str]) -> Program | None:
    """The native program of a function body that is one ``return <expression>;``.

    No line break may follow ``return`` (automatic semicolon insertion would return
    ``undefined``); inside the expression line breaks are harmless, since a token the
    grammar cannot continue with would already have stopped the native parse.
    """
    head = _RETURN.match(body)
    if head is None:
        return None
    rest = body[head.end() :]
    if rest[:1] in ("\n", "\r"):
        return None  # `return` then a line break returns undefined
    tail = _TRAILER.search(rest)
    code = rest[: tail.start()] if tail else rest
    if not code:
        return None
    evaluate = _parse(code, names, returned=True)
    return None if evaluate is None else Program(code, evaluate, returned=True)
