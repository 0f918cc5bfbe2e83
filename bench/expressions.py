"""Micro-benchmark of ``${...}`` resolution on the native path (no JavaScript).

Prints resolutions per second for typical shapes; the target is >= 200,000/s for each.
Run: .venv/bin/python bench/expressions.py
"""

from __future__ import annotations

import time
from typing import Any

from flowrunner.expressions import compile_template, compile_value

SCOPE: dict[str, Any] = {
    "input": {"user": {"name": "Ada", "id": 7}, "items": [{"id": i} for i in range(50)]},
    "shared": {"k": "v", "token": "abc"},
    "results": {"fetch": {"status": 200, "body": [{"id": "first"}, {"id": "second"}]}},
    "params": {},
    "execution": {"id": "run-1"},
    "error": None,
    "secrets": {"TOKEN": "s3cr3t"},
}

# name -> (compiled value, number of ${...} it holds)
CASES: dict[str, tuple[Any, int]] = {
    "whole path      ${input.user.name}": (compile_template("${input.user.name}"), 1),
    "deep index      ${results.fetch.body[0].id}": (
        compile_template("${results.fetch.body[0].id}"),
        1,
    ),
    "negative index  ${input.items[-1].id}": (compile_template("${input.items[-1].id}"), 1),
    "interpolated    2 expressions in text": (
        compile_template("Hello ${input.user.name}, run ${execution.id}"),
        2,
    ),
    "params tree     3 params, 2 expressions": (
        compile_value(
            {
                "url": "https://x.test/${input.user.id}",
                "headers": {"A": "Bearer ${secrets.TOKEN}"},
                "method": "GET",
            }
        ),
        2,
    ),
}


def measure(resolver: Any, seconds: float = 0.5) -> float:
    resolve = resolver.resolve
    count = 0
    batch = 2000
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            resolve(SCOPE)
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    print(f"{'case':<46} {'values/s':>11} {'expressions/s':>14}  (target 200,000 expressions/s)")
    worst = float("inf")
    for name, (resolver, expressions) in CASES.items():
        rate = measure(resolver)
        per_expression = rate * expressions
        worst = min(worst, per_expression)
        verdict = "ok" if per_expression >= 200_000 else "BELOW"
        print(f"{name:<46} {rate:>11,.0f} {per_expression:>14,.0f}  {verdict}")
    print(f"slowest: {worst:,.0f} expression resolutions/s")


if __name__ == "__main__":
    main()
