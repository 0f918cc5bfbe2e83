"""The scripted conversations: what each test model answers, provider-neutral.

A model is picked by name: ``scripted-echo`` (repeats the last user text),
``scripted-tools`` (asks for the first tool with ``{"query": <last user text>}``, and once a
tool result is in the conversation answers ``The answer is <result>``), ``scripted-json``
(valid JSON), ``scripted-json-repair`` (invalid until it is told what is wrong),
``scripted-json-bad`` (never JSON), ``scripted-stream-gate`` (streams the first words, then
waits for the test to open the gate), ``scripted-rate-limit`` (429 with Retry-After once per
server, then echoes), ``scripted-context`` (context too long), ``scripted-filter`` (content
filtered), ``scripted-5xx``.
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
    model: str, turns: list[Turn], tools: list[str], state: dict[str, int], wants_json: bool
) -> Reply:
    """Any other model name behaves as a plain assistant would: it calls the first tool when
    given tools (and answers from the tool's result), replies JSON when asked for JSON (the
    person above), and otherwise echoes."""
    last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
    last = turns[-1] if turns else Turn("user", "")
    plain = not model.startswith("scripted-")
    if model == "scripted-tools" or (plain and (tools or last.role == "tool")):
        if last.role == "tool":
            return Reply(f"The answer is {last.text}")
        if not tools:
            return Reply("no tools were given")
        count = state["tool_calls"] = state.get("tool_calls", 0) + 1
        return Reply(None, [(f"call_{count}", tools[0], {"query": last_user})], "tool_calls")
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


def count_tokens(turns: list[Turn]) -> int:
    return sum(len(t.text.split()) for t in turns) or 1
