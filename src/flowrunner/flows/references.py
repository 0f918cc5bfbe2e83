"""Stored sub-flows: a ``flow`` node naming another flow of the same account.

A reference is a flow's name or id, optionally with a version. It is checked when the parent
is saved (the flow must exist in the account, the version too, and the graph of references
must have no cycle) and resolved again when a run reaches the node (names can change, flows
can be deleted). Every lookup is scoped by account: another account's flow is never found.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from flowrunner.definition import FlowDefinition, load_flow
from flowrunner.errors import DefinitionError, InvalidInput, NotFound, Problem
from flowrunner.plugins import NodeTypeRegistry, builtin_registry
from flowrunner.storage import Flow, FlowStore

# A name lookup reads at most this many pages of 100 flows whose name contains the text.
MAX_NAME_PAGES = 10
# The cycle check at save time reads at most this many flow versions (the run-time depth
# bound covers anything deeper).
MAX_WALK = 100
Loader = Callable[[str], Awaitable[FlowDefinition]]
"""Stored YAML → its definition (the registry parses off the event loop)."""

RECURSION_HINT = "a flow cannot run itself, directly or through other flows"
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``flow`` node's stored sub-flow: where it is written, what it names."""

    node_id: str
    path: str
    """Dotted path of the param (``nodes.call.params.flow``), for line:column."""
    flow: str
    version: int | None


def references(
    definition: FlowDefinition, registry: NodeTypeRegistry | None = None
) -> list[Reference]:
    """The stored sub-flows ``definition`` runs, in node order."""
    registry = registry or builtin_registry()
    found: list[Reference] = []
    for node_id, spec in definition.nodes.items():
        node_type = registry.find(spec.type)
        refs = getattr(node_type, "subflow_refs", None)
        if not callable(refs):
            continue
        for rel, flow, version in refs(spec.params):
            path = ".".join(("nodes", node_id, "params", *rel))
            found.append(Reference(node_id, path, flow, version))
    return found


async def find_flow(flows: FlowStore, account_id: str, ref: str) -> Flow:
    """The account's flow with id ``ref``, else the one named exactly ``ref``.

    ``NotFound`` when there is none (another account's flows included), ``InvalidInput`` when
    several flows carry that name."""
    if _ID.fullmatch(ref):
        try:
            return await flows.get(account_id, ref)
        except NotFound:
            pass
    named: list[Flow] = []
    cursor: str | None = None
    for _ in range(MAX_NAME_PAGES):
        page = await flows.list(account_id, name_contains=ref, limit=100, cursor=cursor)
        named.extend(f for f in page.items if f.name == ref)
        cursor = page.next_cursor
        if cursor is None:
            break
    if not named:
        raise NotFound(f"no flow named '{ref}' (or with that id) in this account", flow=ref)
    if len(named) > 1:
        ids = ", ".join(f.id for f in named[:5])
        raise InvalidInput(
            f"{len(named)} flows are named '{ref}': reference one by its id ({ids})", flow=ref
        )
    return named[0]


async def version_at(flows: FlowStore, flow: Flow, when: datetime) -> int:
    """The version of ``flow`` that was current at ``when``: a run pins its sub-flows' versions
    as they were when it started, and a resumed run finds the same ones again."""
    if flow.current_version < 1:
        raise NotFound(f"flow '{flow.name}' has no version yet", flow_id=flow.id)
    cursor: str | None = None
    limit = 1  # almost always the current version: one row, then wider pages if not
    while True:
        page = await flows.list_versions(flow.account_id, flow.id, limit=limit, cursor=cursor)
        limit = 50
        for version in page.items:  # newest first
            if version.created_at <= when:
                return version.number
        cursor = page.next_cursor
        if cursor is None:
            raise NotFound(
                f"flow '{flow.name}' had no version yet when the run started", flow_id=flow.id
            )


async def check_references(
    flows: FlowStore,
    account_id: str,
    definition: FlowDefinition,
    *,
    flow_id: str | None,
    name: str,
    registry: NodeTypeRegistry | None = None,
    load: Loader | None = None,
) -> None:
    """Before ``definition`` is saved as flow ``flow_id`` (None: a new flow) named ``name``:
    every stored sub-flow it names exists in the account at the given version, and no chain of
    references leads back to it. ``DefinitionError`` with each problem's line:column."""
    walk = _Walk(flows, account_id, flow_id, name, load)
    problems: list[Problem] = []
    for ref in references(definition, registry):

        def problem(message: str, hint: str | None = None, at: Reference = ref) -> None:
            line, column = definition.position(at.path)
            problems.append(Problem(at.path, message, line, column, "error", hint))

        if ref.flow in (name, flow_id):
            problem(f"sub-flow recursion: '{name}' runs itself", RECURSION_HINT)
            continue
        try:
            target = await walk.find(ref.flow)
        except NotFound as exc:
            problem(exc.message, "save the sub-flow first, then name it by its name or id")
            continue
        except InvalidInput as exc:
            problem(exc.message)
            continue
        if ref.version is not None and ref.version > target.current_version:
            problem(
                f"flow '{ref.flow}' has no version {ref.version} "
                f"(its latest is {target.current_version})"
            )
            continue
        chain = await walk.back_to_saved(target, ref.version, [target.name])
        if chain is not None:
            problem(f"sub-flow recursion: {' → '.join([name, *chain])}", RECURSION_HINT)
    if problems:
        raise DefinitionError(problems)


class _Walk:
    """Follows references from the flows the saved one names, looking for a way back to it.

    One walk serves every reference of the save: a flow version already explored leads
    nowhere new (reachability), names are looked up once, and ``MAX_WALK`` bounds the versions
    read in all. Unresolvable references are skipped here: a run reports them."""

    def __init__(
        self,
        flows: FlowStore,
        account_id: str,
        flow_id: str | None,
        name: str,
        load: Loader | None,
    ) -> None:
        self.flows = flows
        self.account_id = account_id
        self.saved = (flow_id, name)
        self.load = load
        self.seen: set[tuple[str, int | None]] = set()
        self.budget = MAX_WALK
        self.found: dict[str, Flow | NotFound | InvalidInput] = {}

    async def find(self, ref: str) -> Flow:
        if ref not in self.found:
            try:
                self.found[ref] = await find_flow(self.flows, self.account_id, ref)
            except (NotFound, InvalidInput) as exc:
                self.found[ref] = exc
        known = self.found[ref]
        if isinstance(known, Exception):
            raise known
        return known

    async def back_to_saved(
        self, flow: Flow, number: int | None, trail: list[str]
    ) -> list[str] | None:
        """The names from ``flow`` back to the saved flow, or None."""
        key = (flow.id, number)
        if key in self.seen or self.budget <= 0:
            return None
        self.seen.add(key)
        self.budget -= 1
        try:
            stored = await self.flows.get_version(
                self.account_id, flow.id, number or flow.current_version
            )
            definition = await self.load(stored.yaml) if self.load else load_flow(stored.yaml)
        except (NotFound, DefinitionError):
            return None
        for ref in references(definition):
            if ref.flow in self.saved and ref.version is None:
                return [*trail, self.saved[1]]
            try:
                target = await self.find(ref.flow)
            except (NotFound, InvalidInput):
                continue
            found = await self.back_to_saved(target, ref.version, [*trail, target.name])
            if found is not None:
                return found
        return None
