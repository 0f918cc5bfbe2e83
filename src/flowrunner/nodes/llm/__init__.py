"""The AI nodes: ``llm`` (one model call), ``router`` and ``format`` (tool-calling helpers).

The provider layer (``types.Provider``, ``providers.make_provider``, the ``openai`` and
``anthropic`` providers, ``errors``, ``structured``) is what the ``agent`` node builds on;
docs/nodes/llm.md describes it.
"""

from flowrunner.nodes.base import DefinedNodeType
from flowrunner.nodes.llm.format import FORMAT
from flowrunner.nodes.llm.node import LLM
from flowrunner.nodes.llm.router import ROUTER

# (type, aliases) of this package's built-ins.
LLM_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [
    (LLM, ()),
    (ROUTER, ()),
    (FORMAT, ()),
]

__all__ = ["LLM_TYPES"]
