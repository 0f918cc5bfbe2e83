"""Per-account JavaScript node types: a tenant's own ``type:`` names, defined over the API.

An account defines a node type in YAML or JSON — ``name``, ``description``, ``params`` (the
JSON Schema of a node's params), ``script`` (a JavaScript function body, with the scope of a
``transform`` node) and optionally ``actions`` — and its flows use it like any other type.
The script runs only in the V8 sandbox, so tenants extend the platform without any
server-side Python. Each save is a new version (like flows); only that account sees its types.

- ``spec``: the definition and its checks;
- ``store``: the versions, kept in the key-value store's system partition (every backend);
- ``node``: the node type and engine node that run the script;
- ``service``: create, update, delete, versions, audit, and the registry of one account.
"""

from flowrunner.custom_types.service import CustomTypes
from flowrunner.custom_types.spec import CustomTypeSpec, parse_spec
from flowrunner.custom_types.store import CustomType

__all__ = ["CustomType", "CustomTypeSpec", "CustomTypes", "parse_spec"]
