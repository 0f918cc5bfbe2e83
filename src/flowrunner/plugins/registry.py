"""The node-type registry: which ``type:`` names a flow may use and how to build them.

A node type is anything with the ``NodeType`` shape — no base class needed. A registry is a
plain object built by the composition root (``builtin_registry()`` makes a fresh one); there is
no module-level singleton, so two servers or tests never see each other's plugins.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from flowrunner.errors import PluginError

if TYPE_CHECKING:
    import jsonschema

    from flowrunner.engine import Node
    from flowrunner.nodes.spec import BuildEnv, NodeSpec


@runtime_checkable
class NodeType(Protocol):
    """A node type: its name, docs, params JSON Schema, code params and a node factory.

    Optional: ``check_params(params, base_path) -> [(param_path, message)]`` for load-time
    checks a JSON Schema cannot express (a referenced file exists, say), and
    ``possible_actions(params) -> set of actions | None``: every action a node can return
    besides ``default`` (None: any, decided at run time), so a ``next`` edge no node of the
    type can take is warned about.
    """

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def params_schema(self) -> Mapping[str, Any]:
        """JSON Schema of the node's ``params`` (``${...}`` strings are exempt at load time)."""

    @property
    def code_params(self) -> frozenset[str]:
        """Params holding code (scripts): never interpolated."""

    def build(self, spec: NodeSpec, env: BuildEnv) -> Node: ...


@dataclass(frozen=True, slots=True)
class TypeSource:
    """Where a node type comes from: ``kind`` is builtin, package, folder or account; the
    plugin's name and version, and its origin (an entry point, a file)."""

    kind: str = "builtin"
    plugin: str | None = None
    version: str | None = None
    origin: str | None = None

    def describe(self) -> str:
        if self.kind == "builtin":
            return "the built-in"
        if self.kind == "account":
            return "the account's JavaScript node type"
        return f"plugin '{self.plugin}' ({self.kind}: {self.origin})"


BUILTIN = TypeSource()


class NodeTypeRegistry:
    """Node types by name (aliases included), with did-you-mean suggestions.

    ``generation`` tells registries of one server apart: a plugin reload builds a new registry
    with a higher generation, so a flow compiled against an older one is not reused. ``scope``
    tells apart the registries made from one generation for one account (``overlay``): empty
    for the server's own; ``cache_key`` is both.
    """

    def __init__(self, types: Iterable[NodeType] = (), *, generation: int = 0) -> None:
        self.generation = generation
        self.scope = ""
        self._types: dict[str, NodeType] = {}
        # name -> params schema as sorted JSON; its validator is built at first use.
        self._schemas: dict[str, str] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._sources: dict[str, TypeSource] = {}
        # Names of types a flow may not use now, with why (a disabled plugin's types).
        self._withheld: dict[str, str] = {}
        for node_type in types:
            self.register(node_type)

    def register(
        self,
        node_type: NodeType,
        *,
        aliases: Iterable[str] = (),
        replace: bool = False,
        source: TypeSource = BUILTIN,
        checked: bool = True,
    ) -> None:
        """Add ``node_type`` under its name and ``aliases``; PluginError if taken or invalid.

        ``checked=False`` leaves the params schema's check against the JSON Schema
        meta-schema to its first use: for the built-in types only, whose schemas their tests
        check (checking ~30 of them was ~0.2 s of CPU at every server start).

        A taken name is refused naming both sources: a plugin never silently replaces a
        built-in or another plugin's type.
        """
        check_shape(node_type)
        names = [node_type.name, *aliases]
        for name in names:
            if not isinstance(name, str) or not name:
                raise PluginError(f"node type name must be a non-empty string, got {name!r}")
            if name in self._types and not replace:
                taken = self._sources.get(name, BUILTIN)
                if source == BUILTIN and taken == BUILTIN:
                    message = f"node type '{name}' is already registered"
                else:
                    message = (
                        f"node type '{name}' of {source.describe()} clashes with "
                        f"{taken.describe()} of that name; use a namespaced name "
                        f"such as '{source.plugin or 'acme'}.{name}'"
                    )
                raise PluginError(message, node_type=name)
        try:
            schema_json = json.dumps(node_type.params_schema, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise PluginError(
                f"node type '{node_type.name}' has a params_schema that is not JSON: {exc}",
                node_type=node_type.name,
            ) from exc
        error = _schema_error(schema_json) if checked else None
        if error is not None:
            raise PluginError(
                f"node type '{node_type.name}' has an invalid params_schema: {error.message}",
                node_type=node_type.name,
            ) from error
        for name in names:
            self._types[name] = node_type
            self._schemas[name] = schema_json
            self._validators.pop(name, None)
            self._sources[name] = source
            self._withheld.pop(name, None)

    @property
    def cache_key(self) -> tuple[int, str]:
        """What a flow compiled against this registry is cached under."""
        return (self.generation, self.scope)

    def overlay(
        self, extra: Iterable[tuple[NodeType, TypeSource]], *, scope: str
    ) -> tuple[NodeTypeRegistry, dict[str, str]]:
        """A new registry: this one's types plus ``extra`` (an account's own), at this
        generation under ``scope``; this one is unchanged. An extra type whose name is taken
        is not registered, and that name is withheld in the overlay (neither type is used, so
        a flow never silently runs another type than the one its author meant); the
        problems come back by name."""
        child = NodeTypeRegistry(generation=self.generation)
        child.scope = scope
        child._types = dict(self._types)
        child._schemas = dict(self._schemas)
        child._validators = dict(self._validators)
        child._sources = dict(self._sources)
        child._withheld = dict(self._withheld)
        problems: dict[str, str] = {}
        for node_type, source in extra:
            try:
                child.register(node_type, source=source)
            except PluginError as exc:
                problems[node_type.name] = exc.message
                if node_type.name in child._types and child._sources.get(node_type.name) != source:
                    child.unregister(node_type.name)
                    child._withheld[node_type.name] = exc.message
        return child, problems

    def withhold(self, name: str, reason: str) -> None:
        """Make ``name`` unknown with ``reason`` as the message (a disabled plugin's type)."""
        if name not in self._types:
            self._withheld[name] = reason

    def unregister(self, name: str) -> None:
        """Remove one name (an alias or the type's own name); PluginError if unknown."""
        if name not in self._types:
            raise PluginError(self.unknown_message(name), node_type=name)
        del self._types[name]
        del self._schemas[name]
        self._validators.pop(name, None)
        self._sources.pop(name, None)

    def source(self, name: str) -> TypeSource:
        """Where the type registered as ``name`` comes from."""
        return self._sources.get(name, BUILTIN)

    def aliases(self, name: str) -> list[str]:
        """The other names the type registered as ``name`` answers to."""
        node_type = self._types.get(name)
        return sorted(n for n, t in self._types.items() if t is node_type and n != name)

    def canonical_names(self) -> list[str]:
        """One name per type (its own), sorted: what a catalog lists."""
        return sorted(n for n, t in self._types.items() if getattr(t, "name", n) == n)

    def get(self, name: str) -> NodeType:
        """The type registered as ``name``; PluginError with a suggestion when unknown."""
        try:
            return self._types[name]
        except KeyError:
            raise PluginError(self.unknown_message(name), node_type=name) from None

    def find(self, name: str) -> NodeType | None:
        return self._types.get(name)

    def params_validator(self, name: str) -> jsonschema.protocols.Validator:
        """A ready validator for the params of type ``name`` (built once, at first use)."""
        validator = self._validators.get(name)
        if validator is None:
            validator = self._validators[name] = _validator(self._schemas[name])
        return validator

    def names(self) -> list[str]:
        return sorted(self._types)

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name``, best first."""
        if name in self._withheld:
            return [name]  # the message says why; no list of every type as a hint
        return difflib.get_close_matches(name, list(self._types), n=3, cutoff=0.6)

    def unknown_message(self, name: str) -> str:
        if name in self._withheld:
            return self._withheld[name]
        close = self.suggest(name)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        return f"unknown node type '{name}'{hint}"

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __len__(self) -> int:
        return len(self._types)


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    """A checked validator per distinct schema: checking against the meta-schema is slow
    (milliseconds), and every fresh registry registers the same built-in schemas again."""
    # jsonschema (~3 MB with referencing and attrs) is imported by the first check: with
    # the built-ins' checks at first use, a server without plugins starts without it.
    import jsonschema

    schema = json.loads(schema_json)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_cls(schema)
    return validator


def _schema_error(schema_json: str) -> jsonschema.SchemaError | None:
    """Why the schema (as sorted JSON) is not a JSON Schema; None if it is (and its
    validator is cached)."""
    import jsonschema

    try:
        _validator(schema_json)
    except jsonschema.SchemaError as exc:
        return exc
    return None


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` cannot be a params JSON Schema; None if it can."""
    try:
        schema_json = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        return f"params_schema is not JSON: {exc}"
    error = _schema_error(schema_json)
    return None if error is None else f"invalid params_schema: {error.message}"


def check_shape(node_type: object) -> None:
    missing = [
        attr
        for attr in ("name", "description", "params_schema", "code_params", "build")
        if not hasattr(node_type, attr)
    ]
    if missing:
        raise PluginError(
            f"{node_type!r} is not a node type: missing {', '.join(missing)}",
            node_type=getattr(node_type, "name", None),
        )
    if not callable(getattr(node_type, "build", None)):
        raise PluginError(f"{node_type!r} is not a node type: build is not callable")
    if not isinstance(getattr(node_type, "params_schema", None), Mapping):
        raise PluginError(f"{node_type!r} is not a node type: params_schema is not a mapping")
