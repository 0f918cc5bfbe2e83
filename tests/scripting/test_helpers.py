"""The helpers scripts get (helpers.js), checked against Python's own implementations."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pytest

from flowrunner.errors import ScriptError
from flowrunner.scripting import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXTS = ["", "abc", "héllo wörld", "emoji 🎉 and 中文", "x" * 1000, "a" * 55, "b" * 64]


async def test_sha256_matches_hashlib(sandbox: Sandbox) -> None:
    digests = await sandbox.evaluate_expression("input.map(sha256)", {"input": TEXTS})
    assert digests == [hashlib.sha256(t.encode()).hexdigest() for t in TEXTS]


async def test_base64_round_trips_utf8_like_python(sandbox: Sandbox) -> None:
    value = await sandbox.evaluate_expression(
        "input.map(t => [base64.encode(t), base64.decode(base64.encode(t))])", {"input": TEXTS}
    )
    assert value == [[base64.b64encode(t.encode()).decode(), t] for t in TEXTS]


async def test_base64_decode_accepts_urlsafe_and_rejects_garbage(sandbox: Sandbox) -> None:
    encoded = base64.urlsafe_b64encode("ÿþ??>>".encode()).decode().rstrip("=")
    assert await sandbox.evaluate_expression("base64.decode(input)", {"input": encoded}) == (
        "ÿþ??>>"
    )
    with pytest.raises(ScriptError, match="not base64"):
        await sandbox.evaluate_expression("base64.decode('@@@')", {})


async def test_uuid_is_v4_and_unique_across_calls_and_evaluations(sandbox: Sandbox) -> None:
    first = await sandbox.evaluate_expression("Array.from({length: 50}, () => uuid())", {})
    second = await sandbox.evaluate_expression("Array.from({length: 50}, () => uuid())", {})
    ids = first + second
    assert len(set(ids)) == 100
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


async def test_dates_helpers(sandbox: Sandbox) -> None:
    code = """[
      dates.parse('2024-02-28T10:00:00Z'),
      dates.add('2024-02-28T10:00:00Z', 2, 'days'),
      dates.add('2024-01-31T00:00:00Z', 1, 'month'),
      dates.add('2024-01-01T00:00:00Z', -90, 'minutes'),
      dates.diff('2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z', 'hours'),
      dates.format('2024-03-05T07:08:09.010Z', 'YYYY/MM/DD HH:mm:ss.SSS'),
      typeof dates.now(),
    ]"""
    assert await sandbox.evaluate_expression(code, {}) == [
        "2024-02-28T10:00:00.000Z",
        "2024-03-01T10:00:00.000Z",
        "2024-02-29T00:00:00.000Z",  # clamped to the month's last day
        "2023-12-31T22:30:00.000Z",
        24,
        "2024/03/05 07:08:09.010",
        "string",
    ]
    now = await sandbox.evaluate_expression("dates.now()", {})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)


async def test_adding_months_or_years_clamps_to_the_last_day_of_the_month(
    sandbox: Sandbox,
) -> None:
    code = """[
      dates.add('2023-01-31T08:00:00Z', 1, 'month'),
      dates.add('2024-03-31T08:00:00Z', -1, 'months'),
      dates.add('2024-02-29T00:00:00Z', 1, 'year'),
      dates.add('2024-01-31T00:00:00Z', 3, 'months'),
      dates.add('2024-01-15T00:00:00Z', 13, 'months'),
    ]"""
    assert await sandbox.evaluate_expression(code, {}) == [
        "2023-02-28T08:00:00.000Z",
        "2024-02-29T08:00:00.000Z",
        "2025-02-28T00:00:00.000Z",
        "2024-04-30T00:00:00.000Z",
        "2025-02-15T00:00:00.000Z",
    ]


async def test_dates_reject_invalid_input(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError, match="invalid date"):
        await sandbox.evaluate_expression("dates.parse('not a date')", {})
    with pytest.raises(ScriptError, match="unknown unit"):
        await sandbox.evaluate_expression("dates.add('2024-01-01', 1, 'fortnight')", {})


async def test_string_helpers(sandbox: Sandbox) -> None:
    code = """[
      strings.capitalize('hello'), strings.slugify('  Héllo, Wörld! 2024 '),
      strings.truncate('abcdefghij', 5), strings.truncate('abc', 5),
      strings.camelCase('order total-amount'), strings.snakeCase('orderTotal Amount'),
    ]"""
    assert await sandbox.evaluate_expression(code, {}) == [
        "Hello",
        "hello-world-2024",
        "abcd…",
        "abc",
        "orderTotalAmount",
        "order_total_amount",
    ]


async def test_json_path_lookup(sandbox: Sandbox) -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}], "odd key": "x"}}
    code = """[
      jsonPath(input, '$.a.b[1].c'), jsonPath(input, 'a.b[0]'),
      jsonPath(input, "$.a['odd key']"), jsonPath(input, '$.a.b[*].c'),
      jsonPath(input, '$.a.missing', 'fallback'), jsonPath(input, '$.a.b[9].c') ?? null,
    ]"""
    assert await sandbox.evaluate_expression(code, {"input": data}) == [
        2,
        {"c": 1},
        "x",
        [1, 2],
        "fallback",
        None,
    ]
    with pytest.raises(ScriptError, match="cannot parse"):
        await sandbox.evaluate_expression("jsonPath(input, '$.a..]')", {"input": data})
