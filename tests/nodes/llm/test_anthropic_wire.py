"""Converting OpenAI wire shapes to Anthropic's Messages API and back."""

from __future__ import annotations

import json

from flowrunner.nodes.llm.anthropic_provider import from_anthropic, to_anthropic
from flowrunner.nodes.llm.types import ChatRequest


def test_a_conversation_with_tool_calls_becomes_alternating_anthropic_turns() -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    request = ChatRequest(
        model="m",
        messages=[
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "t1", "content": "r1"},
            {"role": "tool", "tool_call_id": "t2", "content": "r2"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice="required",
        stop=["END"],
    )
    sent = to_anthropic(request)
    assert sent["system"] == "sys"
    assert sent["stop_sequences"] == ["END"]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    user, assistant, results = sent["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert assistant["content"] == [
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
    ]
    assert [b["tool_use_id"] for b in results["content"]] == ["t1", "t2"]  # merged in one turn


def test_a_reply_with_text_and_tool_use_reads_as_the_openai_shape() -> None:
    result = from_anthropic(
        {
            "model": "m",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )
    assert result.content == "Let me check."
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {
            "id": "t1",
            "type": "function",
            "function": {"name": "f", "arguments": json.dumps({"a": 1})},
        }
    ]
    assert result.usage.as_dict() == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
