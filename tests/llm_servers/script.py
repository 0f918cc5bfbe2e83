"""The scripted conversations: what each test model answers, provider-neutral.

A model is picked by name: ``scripted-echo`` (repeats the last user text),
``scripted-tools`` (asks for the first tool with ``{"query": <last user text>}``, and once a
tool result is in the conversation answers ``The answer is <result>``), ``scripted-json``
(valid JSON), ``scripted-json-repair`` (invalid until it is told what is wrong),
``scripted-json-bad`` (never JSON), ``scripted-stream-gate`` (streams the first words, then
waits for the test to open the gate), ``scripted-rate-limit`` (429 with Retry-After once per
server, then echoes), ``scripted-context`` (context too long), ``scripted-filter`` (content
filtered), ``scripted-5xx``.

The agent models fill each tool's arguments from its JSON Schema (a string property gets the
last user text, a number property 2, then 3, …; a list of types counts as its first) and,
once the tools' results are in, answer
``Results: <result> | <result> …`` in the order they came: ``scripted-agent`` calls every
tool at once (parallel calls), ``scripted-agent-steps`` one tool per step in order,
``scripted-agent-loop`` the first tool again and again (it never answers),
``scripted-agent-unknown`` a tool nobody offered (then answers with what it was told).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PERSON = {"name": "Ada", "age": 36}
PERSON_SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
}
STREAM_WORDS = ["Once ", "upon ", "a ", "time ", "there ", "was ", "a ", "flow."]


@dataclass
class Turn:
    """A message reduced to what the scripts look at."""

    role: str  # user, assistant, tool
    text: str


@dataclass
class Reply:
    text: str | None = None
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    finish: str = "stop"  # stop, tool_calls, content_filter
    error: tuple[int, str, str] | None = None  # (status, kind, message)
    retry_after: str | None = None
    gated: bool = False  # stream the first words, then wait for the gate

    def words(self) -> list[str]:
        if self.gated:
            return STREAM_WORDS
        if not self.text:
            return []
        parts = self.text.split(" ")
        return [p + " " for p in parts[:-1]] + [parts[-1]]


def answer(
    model: str,
    turns: list[Turn],
    tools: list[str],
    state: dict[str, int],
    wants_json: bool,
    schemas: dict[str, dict[str, Any]] | None = None,
) -> Reply:
    """Any other model name behaves as a plain assistant would: it calls the first tool when
    given tools (its arguments from the tool's schema, as the agent models fill them; else
    ``{"query": <last user text>}``) and answers from the tool's result, replies JSON when
    asked for JSON (the person above), and otherwise echoes."""
    last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
    last = turns[-1] if turns else Turn("user", "")
    plain = not model.startswith("scripted-")
    if model.startswith("scripted-agent"):
        return _agent(model, turns, tools, state, schemas or {}, last_user)
    if model == "scripted-tools" or (plain and (tools or last.role == "tool")):
        if last.role == "tool":
            return Reply(f"The answer is {last.text}")
        if not tools:
            return Reply("no tools were given")
        count = state["tool_calls"] = state.get("tool_calls", 0) + 1
        # A plain model fills the arguments the tool's schema asks for, when it says.
        filled = _arguments((schemas or {}).get(tools[0]) or {}, last_user) if plain else {}
        arguments = filled or {"query": last_user}
        return Reply(None, [(f"call_{count}", tools[0], arguments)], "tool_calls")
    if model == "scripted-json":
        return Reply(json.dumps(PERSON))
    if model == "scripted-json-repair":
        told = any(t.role == "user" and "does not match" in t.text for t in turns)
        return Reply(json.dumps(PERSON if told else {"name": "Ada"}))
    if model == "scripted-json-bad":
        return Reply("Sorry, I cannot do JSON today.")
    if model == "scripted-stream-gate":
        return Reply("".join(STREAM_WORDS), gated=True)
    if model == "scripted-rate-limit":
        state["rate_limited"] = state.get("rate_limited", 0) + 1
        if state["rate_limited"] == 1:
            return Reply(
                error=(429, "rate_limit", "Rate limit reached, retry later"), retry_after="1"
            )
        return Reply(f"echo: {last_user}")
    if model == "scripted-context":
        return Reply(
            error=(
                400,
                "context_length",
                "This model's maximum context length is 8 tokens; the messages are too long",
            )
        )
    if model == "scripted-filter":
        return Reply("", finish="content_filter")
    if model == "scripted-5xx":
        return Reply(error=(500, "server_error", "The server had an error"))
    if wants_json and not model.startswith("scripted-"):
        return Reply(json.dumps(PERSON))
    return Reply(f"echo: {last_user}")


def _agent(
    model: str,
    turns: list[Turn],
    tools: list[str],
    state: dict[str, int],
    schemas: dict[str, dict[str, Any]],
    last_user: str,
) -> Reply:
    since = len(turns) - next(
        (i for i, t in enumerate(reversed(turns)) if t.role == "user"), len(turns)
    )
    results = [t.text for t in turns[since:] if t.role == "tool"]

    def call(name: str) -> tuple[str, str, dict[str, Any]]:
        count = state["tool_calls"] = state.get("tool_calls", 0) + 1
        return (f"call_{count}", name, _arguments(schemas.get(name) or {}, last_user))

    def done() -> Reply:
        return Reply("Results: " + " | ".join(results))

    if model == "scripted-agent-loop":
        return Reply(None, [call(tools[0])], "tool_calls") if tools else done()
    if model == "scripted-agent-unknown":
        return done() if results else Reply(None, [call("nope")], "tool_calls")
    if model == "scripted-agent-steps":
        if len(results) < len(tools):
            return Reply(None, [call(tools[len(results)])], "tool_calls")
        return done()
    if results or not tools:
        return done()
    return Reply(None, [call(name) for name in tools], "tool_calls")


def _arguments(schema: dict[str, Any], text: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    number = 2
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if isinstance(kind, list):  # ["string", "number"]: the first
            kind = kind[0] if kind else None
        if kind in ("integer", "number"):
            arguments[name] = number
            number += 1
        elif kind == "string":
            arguments[name] = text
    return arguments


def count_tokens(turns: list[Turn]) -> int:
    return sum(len(t.text.split()) for t in turns) or 1
