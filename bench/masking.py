"""Micro-benchmark of secret masking and checkpoint sealing, per run and per node.

For 3 and 50 secrets of an account: building the run's masker (every run does it), masking a
2 KB node output (every node of a run with secrets), and checking a 1.2 KB checkpoint part for
a secret (every checkpoint part), sealing it when one is found. The reference is the plain
alternation of the raw values alone (what masking was before encoded forms), measured in
the same run.
Run: .venv/bin/python bench/masking.py
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flowrunner.executions.sealing import Sealer
from flowrunner.secrets import Keyring, Masker

OUTPUT = {
    "items": [{"name": f"item {i}", "desc": "lorem ipsum dolor sit amet " * 3} for i in range(20)]
}
PART = {"rows": [{"i": i, "name": "x" * 20} for i in range(30)]}


def per_call_us(call: Callable[[], Any], seconds: float = 0.5) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            call()
        count += 50
    return elapsed / count * 1e6


def flat(values: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))


def plain_walk(pattern: re.Pattern[str], obj: Any) -> Any:
    """The reference: the same tree walk with the raw values' pattern, on values only."""
    if isinstance(obj, str):
        return pattern.sub("***", obj)
    if isinstance(obj, dict):
        return {key: plain_walk(pattern, value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [plain_walk(pattern, item) for item in obj]
    return obj


def measure(n: int, keys: Keyring) -> None:
    secrets = {f"K{i}": f'secret-"value"-{i:04d}/x' for i in range(n)}
    values = list(secrets.values())
    masker = Masker.for_secrets(secrets)
    reference = flat(values)
    sealer = Sealer(masker, keys)
    with_secret = {**PART, "token": values[0]}
    rows: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        ("build the run's masker", lambda: Masker.for_secrets(secrets), lambda: flat(values)),
        ("mask a 2 KB output", lambda: masker.mask(OUTPUT), lambda: plain_walk(reference, OUTPUT)),
        ("checkpoint part, no secret", lambda: sealer.seal(PART), None),
        ("checkpoint part, sealed", lambda: sealer.seal(with_secret), None),
    ]
    for name, now, before in rows:
        ref = f"{per_call_us(before):14.1f}" if before else f"{'-':>14}"
        print(f"{n:>8} {name:<34} {per_call_us(now):9.1f} {ref}")


def main() -> None:
    keys = Keyring([Keyring.generate_key()])
    print(f"{'secrets':>8} {'case':<34} {'now us':>9} {'plain-only us':>14}")
    for n in (3, 50):
        measure(n, keys)


if __name__ == "__main__":
    main()
