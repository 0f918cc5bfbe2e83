"""Example Flowrunner plugin package: two node types under the ``acme`` namespace.

``acme.text.slug`` is a plain function (FunctionNodeType); ``acme.text.classify`` is a
DefinedNode subclass that picks the next edge with an action.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from flowrunner.nodes import Call, DefinedNode, DefinedNodeType
from flowrunner.plugins import FunctionNodeType, Plugin

__version__ = "1.2.0"


def slug(call: Call) -> str:
    """``params.text`` as a URL slug: lower case, words joined by ``params.separator``."""
    words = re.findall(r"[a-z0-9]+", str(call.params["text"]).lower())
    return str(call.params.get("separator", "-")).join(words)


class Classify(DefinedNode):
    """Routes on the length of ``params.text``: action ``long`` past ``params.limit``."""

    actions: ClassVar[frozenset[str] | None] = frozenset({"long"})

    async def work(self, call: Call) -> Any:
        text = str(call.params["text"])
        if len(text) > int(call.params.get("limit", 20)):
            call.action = "long"
        return {"length": len(text)}


plugin = Plugin(
    name="acme",
    version=__version__,
    description="Text helpers of ACME Corp.",
    author="ACME Corp. <plugins@acme.example>",
    node_types=[
        FunctionNodeType(
            name="acme.text.slug",
            description="Turn a text into a URL slug.",
            work=slug,
            params_schema={
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "separator": {"type": "string", "maxLength": 3},
                },
                "required": ["text"],
                "additionalProperties": False,
            },
        ),
        DefinedNodeType(
            "acme.text.classify",
            "Route long texts to the `long` edge.",
            Classify,
            {
                "type": "object",
                "properties": {"text": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["text"],
            },
        ),
    ],
)
