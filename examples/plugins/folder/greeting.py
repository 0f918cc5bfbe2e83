"""A one-file plugin for the plugins folder (FLOWRUNNER_PLUGINS_DIR): drop it in, and the
``local.greet`` node type is there without a restart; edit it, and new runs use the new code.
"""

from flowrunner.plugins import FunctionNodeType, Plugin


def greet(call):  # call.params are the node's params, resolved; the return value its output
    return f"{call.params.get('greeting', 'Hello')}, {call.params['name']}!"


plugin = Plugin(
    name="greeting",
    version="1.0.0",
    description="Greets by name.",
    author="you",
    node_types=[
        FunctionNodeType(
            name="local.greet",
            description="A greeting for params.name.",
            work=greet,
            params_schema={
                "type": "object",
                "properties": {"name": {"type": "string"}, "greeting": {"type": "string"}},
                "required": ["name"],
            },
        )
    ],
)
