"""The YAML flow format: parsing with positions, validation, and compiling to the engine.

``load_flow(text)`` → ``FlowDefinition`` (or DefinitionError with every problem),
``validate_flow(text)`` → problems, ``compile_flow(definition)`` → ``CompiledFlow``,
``flow_schema()`` → the JSON Schema of the format.
"""

from flowrunner.definition.compile import CompiledFlow, compile_flow
from flowrunner.definition.load import load_flow, validate_flow
from flowrunner.definition.model import FlowDefinition, Metadata
from flowrunner.definition.schema import flow_schema
from flowrunner.durations import parse_duration
from flowrunner.nodes.spec import BatchSpec, NodeSpec, RetrySpec

__all__ = [
    "BatchSpec",
    "CompiledFlow",
    "FlowDefinition",
    "Metadata",
    "NodeSpec",
    "RetrySpec",
    "compile_flow",
    "flow_schema",
    "load_flow",
    "parse_duration",
    "validate_flow",
]
