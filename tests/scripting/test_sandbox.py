"""The sandbox API: scope in, values and shared state out, logs, errors with positions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from flowrunner.errors import SandboxError, ScriptError
from flowrunner.scripting import LogLine, Sandbox, ScriptResult

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = {
    "input": {"orders": [{"total": 50}, {"total": 150}]},
    "shared": {"count": 1},
    "params": {"limit": 100},
    "results": {"fetch": {"status": 200}},
    "secrets": {"TOKEN": "s3cret"},
    "execution": {"id": "ex-1", "flow_id": "f-1"},
}


async def test_expression_sees_every_name_in_scope(sandbox: Sandbox) -> None:
    code = (
        "[input.orders.length, shared.count, params.limit, results.fetch.status,"
        " secrets.TOKEN, execution.id]"
    )
    value = await sandbox.evaluate_expression(code, SCOPE)
    assert value == [2, 1, 100, 200, "s3cret", "ex-1"]


async def test_function_body_sees_every_name_and_returns_its_value(sandbox: Sandbox) -> None:
    body = "return input.orders.filter(o => o.total > params.limit).map(o => o.total);"
    result = await sandbox.run_function(body, SCOPE)
    assert result == ScriptResult(value=[150], shared={"count": 1}, logs=[])


async def test_shared_mutations_and_reassignment_come_back(sandbox: Sandbox) -> None:
    mutated = await sandbox.run_function("shared.count += 1; shared.seen = true;", SCOPE)
    assert mutated.shared == {"count": 2, "seen": True}
    assert mutated.value is None
    replaced = await sandbox.run_function("shared = {fresh: 1}; return 'ok'", SCOPE)
    assert replaced.shared == {"fresh": 1}
    assert SCOPE["shared"] == {"count": 1}  # the caller's dict is data, never aliased


async def test_shared_is_none_when_not_in_scope(sandbox: Sandbox) -> None:
    result = await sandbox.run_function("return input * 2", {"input": 21})
    assert result.value == 42
    assert result.shared is None


async def test_modern_syntax_works(sandbox: Sandbox) -> None:
    body = """
    const {a, ...rest} = input;
    class Point { #x = 1; get x() { return this.#x; } }
    const big = 2n ** 64n;
    return {a, rest, nullish: input.missing ?? 'dflt', chain: input?.deep?.er,
            x: new Point().x, big: big.toString(), last: [1, 2, 3].at(-1),
            grouped: Object.groupBy([1, 2, 3], n => n % 2 ? 'odd' : 'even')};
    """
    value = (await sandbox.run_function(body, {"input": {"a": 1, "b": 2}})).value
    assert value == {
        "a": 1,
        "rest": {"b": 2},
        "nullish": "dflt",
        "x": 1,
        "big": "18446744073709551616",
        "last": 3,
        "grouped": {"odd": [1, 3], "even": [2]},
    }


async def test_values_cross_as_json_data_with_dates_as_iso_strings(sandbox: Sandbox) -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    scope = {"input": {"when": when, "price": Decimal("9.5"), "tags": ("a", "b")}}
    value = await sandbox.evaluate_expression(
        "({when: input.when, price: input.price, tags: input.tags, d: new Date(0)})", scope
    )
    assert value == {
        "when": "2024-05-01T12:30:00+00:00",
        "price": 9.5,
        "tags": ["a", "b"],
        "d": "1970-01-01T00:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("return () => 1", "function"),
        ("return {n: 10n}", "bigint"),
        ("const a = {}; a.self = a; return a", "circular"),
        ("return Symbol('s')", "symbol"),
    ],
)
async def test_non_serialisable_result_is_a_clear_script_error(
    sandbox: Sandbox, body: str, fragment: str
) -> None:
    with pytest.raises(ScriptError, match=fragment) as info:
        await sandbox.run_function(body, {})
    assert info.value.context["error_type"] == "ResultError"


async def test_console_output_is_captured_with_levels(sandbox: Sandbox) -> None:
    body = """
    console.log('hello', {a: 1}, [2]);
    console.warn('careful');
    console.error(new TypeError('bad'));
    console.info(undefined, null, 3);
    return 1;
    """
    result = await sandbox.run_function(body, {})
    assert result.logs[:2] == [
        LogLine("info", 'hello {"a":1} [2]'),
        LogLine("warn", "careful"),
    ]
    assert result.logs[2].level == "error"
    assert result.logs[2].message.startswith("TypeError: bad")
    assert result.logs[3] == LogLine("info", "undefined null 3")


async def test_logs_are_capped(sandbox: Sandbox) -> None:
    result = await sandbox.run_function("for (let i = 0; i < 5000; i++) console.log(i)", {})
    assert len(result.logs) == 1001
    assert "truncated" in result.logs[-1].message


async def test_thrown_error_reports_message_line_and_column(sandbox: Sandbox) -> None:
    body = "const a = 1;\nconst b = 2;\n    null.boom;\nreturn a + b;"
    with pytest.raises(ScriptError) as info:
        await sandbox.run_function(body, {})
    assert info.value.line == 3
    assert info.value.column == 10
    assert "Cannot read properties of null" in str(info.value)
    assert info.value.context["error_type"] == "TypeError"


async def test_error_position_points_at_user_code_not_helpers(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        await sandbox.run_function("\n\n  base64.decode('***')", {})
    assert (info.value.line, info.value.column) == (3, 10)


async def test_thrown_non_error_values_are_reported(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="Error: boom"):
        await sandbox.run_function("throw 'boom'", {})


async def test_logs_before_an_error_travel_with_it(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        await sandbox.run_function("console.log('step 1'); throw new Error('x')", {})
    assert info.value.context["logs"] == [{"level": "info", "message": "step 1"}]


@pytest.mark.parametrize(
    ("kind", "code", "line", "column"),
    [
        ("function", "let x = ;", 1, 9),
        ("function", "const a = 1;\nif (a {\n}", 2, 7),
        ("function", "return }", 1, 9),  # an unbalanced brace is reported after it
        ("expression", "input.a +* 2", 1, 10),
        ("expression", "1 +", 1, 4),
    ],
)
async def test_syntax_errors_carry_line_and_column(
    sandbox: Sandbox, kind: str, code: str, line: int, column: int
) -> None:
    with pytest.raises(ScriptError) as checked:
        sandbox.check_syntax(code, kind=kind)  # type: ignore[arg-type]
    assert (checked.value.line, checked.value.column) == (line, column)
    assert checked.value.context["error_type"] == "SyntaxError"
    run = (
        sandbox.run_function(code, {"input": {}})
        if kind == "function"
        else sandbox.evaluate_expression(code, {"input": {}})
    )
    with pytest.raises(ScriptError) as ran:
        await run
    assert (ran.value.line, ran.value.column) == (line, column)


async def test_check_syntax_accepts_valid_code_and_runs_nothing(sandbox: Sandbox) -> None:
    sandbox.check_syntax("while (true) {}", kind="function")
    sandbox.check_syntax("input.items.map(i => i * 2)", kind="expression")


async def test_returned_promise_is_awaited(sandbox: Sandbox) -> None:
    body = """
    const later = Promise.resolve(2).then(n => { console.log('then'); return n * 21; });
    return later;
    """
    result = await sandbox.run_function(body, {})
    assert result.value == 42
    assert result.logs == [LogLine("info", "then")]


async def test_rejected_or_unsettled_promise_is_a_script_error(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="nope"):
        await sandbox.run_function("return Promise.reject(new Error('nope'))", {})
    with pytest.raises(ScriptError, match="never settled"):
        await sandbox.run_function("return new Promise(() => {})", {})


@pytest.mark.parametrize("name", ["not-valid", "let", "arguments", "1x", "__scope"])
async def test_unusable_scope_names_are_rejected(sandbox: Sandbox, name: str) -> None:
    with pytest.raises(SandboxError, match="variable name"):
        await sandbox.evaluate_expression(name, {name: 1})


async def test_non_json_scope_data_is_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="JSON-compatible"):
        await sandbox.evaluate_expression("input", {"input": object()})
    with pytest.raises(SandboxError, match="JSON-compatible"):
        await sandbox.evaluate_expression("input", {"input": float("nan")})


async def test_only_names_the_code_mentions_are_sent(sandbox: Sandbox) -> None:
    scope = {"input": 1, "unused": object(), "bad-name": 2}
    assert await sandbox.evaluate_expression("input + 1", scope) == 2
    # An identifier spelled with a unicode escape still finds its value.
    assert await sandbox.evaluate_expression("\\u0069nput + 1", {"input": 1}) == 2
    untouched = {"n": 1}
    result = await sandbox.run_function("return input", {"input": 5, "shared": untouched})
    assert result.shared == {"n": 1}


async def test_sandbox_starts_on_first_use_and_closes() -> None:
    box = Sandbox(workers=1)
    assert await box.evaluate_expression("6 * 7", {}) == 42
    await box.close()
    with pytest.raises(SandboxError, match="closed"):
        await box.evaluate_expression("1", {})
    with pytest.raises(SandboxError, match="closed"):
        box.check_syntax("1", kind="expression")


async def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Sandbox(timeout=0)


async def test_expression_error_reports_position_inside_the_expression(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        await sandbox.evaluate_expression("1 +\n  missing", {})
    assert (info.value.line, info.value.column) == (2, 3)
    assert "missing is not defined" in str(info.value)


async def test_large_scopes_cross_intact(sandbox: Sandbox) -> None:
    rows = [{"id": i, "name": f"név {i}", "quote": 'say "hi"\n'} for i in range(2000)]
    body = "return {n: input.rows.length, last: input.rows.at(-1), sum: input.rows.length}"
    value = (await sandbox.run_function(body, {"input": {"rows": rows}})).value
    assert value == {"n": 2000, "last": rows[-1], "sum": 2000}


async def test_a_lone_surrogate_in_the_data_reaches_the_script_as_javascript_has_it(
    sandbox: Sandbox,
) -> None:
    # JSON "\ud800" (valid JSON, as a request body may carry it) parses to a lone surrogate,
    # which has no UTF-8 form.
    lone = json.loads('"a\\ud800b"')
    assert await sandbox.evaluate_expression("input.length", {"input": lone}) == 3
    code = await sandbox.evaluate_expression("input.charCodeAt(1)", {"input": lone})
    assert code == 0xD800
    assert await sandbox.evaluate_expression("input", {"input": lone}) == lone
