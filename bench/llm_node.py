"""Benchmark of the llm node: per-call overhead over a bare ``openai`` SDK call, in one run.

The model server is the scripted OpenAI-compatible one of the tests (tests/llm_servers, via
examples/llm-tools.server.py), in its own process on a free loopback port; it echoes the
prompt. Measured in the same run, alternating rounds, for a plain and a streamed call:

- bare: ``AsyncOpenAI.chat.completions.create`` on one client made once (its own httpx2 pool);
- node: a compiled flow of one ``llm`` node run to the end: params resolved (the key from
  ``${secrets.KEY}``), a per-call SDK client on the shared SSRF-guarded pool, the fairness
  slot, the call, output built, shared.result/llm_result.

Prints the time per call of each and the node's overhead. Not a test: numbers depend on the
machine. Run: PYTHONPATH=src .venv/bin/python bench/llm_node.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import openai

from flowrunner.definition import compile_flow, load_flow

ROUNDS = 300
ROOT = Path(__file__).resolve().parents[1]

FLOW = """metadata: {{name: One call}}
nodes:
  ask:
    type: llm
    params:
      base_url: {url}
      model: bench
      api_key: ${{secrets.KEY}}
      prompt: Say something short.
      stream: {stream}
"""


async def measure(url: str) -> None:
    os.environ["FLOWRUNNER_HTTP_ALLOW_PRIVATE"] = "true"
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    messages = [{"role": "user", "content": "Say something short."}]
    secrets = {"KEY": "sk-bench"}
    print(f"{ROUNDS} calls each against the scripted OpenAI-compatible server (local uvicorn)")
    for stream in (False, True):
        flow = compile_flow(load_flow(FLOW.format(url=url, stream=str(stream).lower())))

        async def bare(stream: bool = stream) -> None:
            if not stream:
                reply = await client.chat.completions.create(model="bench", messages=messages)  # type: ignore[arg-type]
                assert reply.choices[0].message.content
                return
            chunks = await client.chat.completions.create(
                model="bench",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            text = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
            assert "".join(text)

        for _ in range(20):  # warm up both: connections, caches
            await bare()
            await flow.run({}, secrets=secrets)
        bare_s = node_s = 0.0
        for _ in range(ROUNDS):
            start = time.perf_counter()
            await bare()
            bare_s += time.perf_counter() - start
            start = time.perf_counter()
            result = await flow.run({}, secrets=secrets)
            node_s += time.perf_counter() - start
            assert result.output["content"]
        per_bare = bare_s / ROUNDS * 1000
        per_node = node_s / ROUNDS * 1000
        kind = "streamed" if stream else "plain"
        overhead = f"{per_node - per_bare:6.3f} ms ({per_node / per_bare:.2f}x)"
        print(f"  {kind:8} bare SDK: {per_bare:7.3f} ms/call   llm node: {per_node:7.3f} ms/call")
        print(f"           overhead per call: {overhead}")
    await client.close()


def main() -> None:
    script = ROOT / "examples" / "llm-tools.server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        asyncio.run(measure(url))
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
