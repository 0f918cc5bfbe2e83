"""The provider interface: one chat call in, one normalised result out.

Everything above a provider speaks the OpenAI wire shapes, because that is what flows written
for the original read and write: messages are ``{role, content, tool_calls?, tool_call_id?,
name?}`` dicts (content a string or a list of parts), tools are ``{type: "function",
function: {name, description, parameters}}``, a tool call is ``{id, type: "function",
function: {name, arguments}}`` with ``arguments`` a JSON string. A provider converts to and
from its own wire format (anthropic.py does) and maps its SDK's errors onto errors.py.

The ``agent`` node reuses this layer as is: build a ``ChatRequest``, call
``provider.chat(request, on_text)``, append ``result.assistant_message()`` and the tool
results to ``messages``, repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

JSONDict = dict[str, Any]

# A streamed reply longer than this fails the call (a server that never stops streaming).
MAX_STREAMED_CHARS = 4_000_000

OnText = Callable[[str], None]
"""Called with each piece of generated text as it arrives (streaming calls only)."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One model call, provider-neutral (OpenAI wire shapes; see the module docstring)."""

    model: str
    messages: Sequence[Mapping[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: Sequence[str] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    # JSON Schema the reply must match (structured output), or {} for "any JSON object".
    output_schema: Mapping[str, Any] | None = None
    timeout: float = 60.0


@dataclass(slots=True)
class ChatResult:
    content: str | None
    tool_calls: list[JSONDict] = field(default_factory=list)
    # OpenAI's vocabulary: stop, length, tool_calls, content_filter.
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    raw: JSONDict | None = None

    def assistant_message(self) -> JSONDict:
        """The reply as a message to append to the conversation."""
        message: JSONDict = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class Provider(Protocol):
    """A model API behind its official SDK, reached through the SSRF-guarded client."""

    name: str

    async def chat(self, request: ChatRequest, on_text: OnText | None = None) -> ChatResult:
        """Call the model once; with ``on_text`` the reply is streamed through it as it is
        generated (the result is the same either way). Raises ``LLMError`` subclasses."""
        ...
