"""No host access, and nothing one evaluation does is visible to the next."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from flowrunner.errors import ScriptError
from flowrunner.scripting import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def evaluate_everywhere(sandbox: Sandbox, body: str) -> list[object]:
    """Run ``body`` enough times, concurrently, to land on every worker."""
    results = await asyncio.gather(*(sandbox.run_function(body, {}) for _ in range(4)))
    return [r.value for r in results]


@pytest.mark.parametrize(
    "name",
    [
        "require", "process", "fetch", "XMLHttpRequest", "setTimeout", "setInterval",
        "queueMicrotask", "eval", "WebAssembly", "SharedArrayBuffer", "ArrayBuffer",
        "Uint8Array", "Float64Array", "DataView", "Atomics", "WeakRef",
        "FinalizationRegistry", "Deno", "Bun", "module", "exports", "__dirname", "global",
    ],
)  # fmt: skip
async def test_host_and_off_heap_globals_do_not_exist(sandbox: Sandbox, name: str) -> None:
    assert await sandbox.evaluate_expression(f"typeof {name}", {}) == "undefined"


async def test_require_and_process_calls_fail_as_script_errors(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="require is not defined"):
        await sandbox.run_function("return require('fs').readFileSync('/etc/passwd')", {})
    with pytest.raises(ScriptError, match="process is not defined"):
        await sandbox.run_function("return process.env", {})


async def test_dynamic_import_is_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError):
        await sandbox.run_function("return import('fs')", {})
    with pytest.raises(ScriptError):
        await sandbox.run_function("return import('data:text/javascript,export default 1')", {})


async def test_function_constructor_cannot_reach_the_host_or_global_scope(
    sandbox: Sandbox,
) -> None:
    body = """
    const F = (() => {}).constructor;
    const g = F('return this')();
    return [typeof g.process, typeof g.require, Object.isFrozen(g),
            F('return typeof eval')()];
    """
    assert (await sandbox.run_function(body, {})).value == [
        "undefined", "undefined", True, "undefined",
    ]  # fmt: skip


async def test_globals_set_by_one_evaluation_are_not_seen_by_the_next(sandbox: Sandbox) -> None:
    attempts = [
        "globalThis.leak = 1",
        "leak = 1",
        "Object.defineProperty(globalThis, 'leak', {value: 1})",
        "(() => {}).constructor('leak = 1')()",
        "(() => {}).constructor('var leak = 1')()",
    ]
    for body in attempts:
        # Sloppy-mode code fails silently on the frozen global; strict code throws.
        with contextlib.suppress(ScriptError):
            await sandbox.run_function(body, {})
    assert await evaluate_everywhere(sandbox, "return typeof leak") == ["undefined"] * 4


@pytest.mark.parametrize(
    "body",
    [
        "Object.prototype.polluted = 1",
        "Array.prototype.polluted = 1",
        "({}).__proto__.polluted = 1",
        "Object.setPrototypeOf(Object.prototype, {polluted: 1})",
        "Array.prototype.map = () => 'hijacked'",
        "JSON.stringify = () => '\"hijacked\"'",
        "Object.getPrototypeOf(function*(){}).prototype.polluted = 1",
        "Object.getPrototypeOf([][Symbol.iterator]()).polluted = 1",
        "Object.getPrototypeOf(async function(){}).polluted = 1",
        "Error.prepareStackTrace = (e, s) => s",
        "String.prototype.trim = () => 'hijacked'",
        "Math.random = () => 4",
        "console.log = () => {}",
        "base64.encode = () => 'hijacked'",
    ],
)
async def test_builtins_and_helpers_cannot_be_polluted(sandbox: Sandbox, body: str) -> None:
    with pytest.raises(ScriptError, match="TypeError"):
        await sandbox.run_function(body, {})
    probe = """
    return [({}).polluted, [].polluted, [1].map(x => x + 1), JSON.stringify(1),
            ' a '.trim(), Math.random() < 1, base64.encode('a'),
            (function*(){})().polluted];
    """
    assert (
        await evaluate_everywhere(sandbox, probe)
        == [[None, None, [2], "1", "a", True, "YQ==", None]] * 4
    )


async def test_assigning_inherited_names_on_own_objects_still_works(sandbox: Sandbox) -> None:
    # Frozen prototypes must not break ordinary code (the "override mistake").
    body = """
    const e = new Error('m'); e.name = 'Custom'; e.message = 'changed';
    const o = {}; o.toString = () => 'mine'; o.constructor = 'c';
    function P() {} P.prototype.toString = function () { return 'P!'; };
    return [String(e), String(o), o.constructor, String(new P()), String({})];
    """
    value = (await sandbox.run_function(body, {})).value
    assert value == ["Custom: changed", "mine", "c", "P!", "[object Object]"]


async def test_regexp_legacy_statics_do_not_leak_matches(sandbox: Sandbox) -> None:
    await sandbox.run_function("/(s3cret)/.exec(input)", {"input": "the s3cret value"})
    value = await sandbox.evaluate_expression("[typeof RegExp.$1, typeof RegExp.lastMatch]", {})
    assert value == ["undefined", "undefined"]


async def test_the_runtime_object_cannot_be_found(sandbox: Sandbox) -> None:
    body = """
    const names = Object.getOwnPropertyNames(globalThis).filter(n => n.startsWith('__'));
    const values = names.map(n => globalThis[n]);
    let visible = false;
    try { visible = typeof __fr !== 'undefined'; } catch (e) {}
    return [names.some(n => n.startsWith('__fr')), values, visible];
    """
    # mini-racer's timer shim leaves a non-deletable `var`, blanked out by the runtime.
    assert (await sandbox.run_function(body, {})).value == [False, [None], False]


async def test_scope_of_one_call_is_invisible_to_another(sandbox: Sandbox) -> None:
    await sandbox.run_function("return secrets.KEY", {"secrets": {"KEY": "first-run-secret"}})
    body = "return typeof secrets === 'undefined' && !JSON.stringify(globalThis).includes('first')"
    assert await evaluate_everywhere(sandbox, body) == [True] * 4


async def test_pending_microtasks_cannot_touch_a_later_evaluation(sandbox: Sandbox) -> None:
    body = """
    Promise.resolve().then(() => Promise.resolve()).then(() => console.log('late'));
    return 'done';
    """
    first = await sandbox.run_function(body, {})
    second = await sandbox.run_function("return 'clean'", {})
    assert [line.message for line in first.logs] == ["late"]
    assert second.logs == []


async def test_stack_traces_do_not_reveal_caller_functions(sandbox: Sandbox) -> None:
    body = """
    const sloppy = (() => {}).constructor('return sloppy.caller');
    let caller;
    try { caller = sloppy(); } catch (e) { caller = 'threw'; }
    return caller === null || caller === 'threw' || caller === undefined;
    """
    assert (await sandbox.run_function(body, {})).value is True
