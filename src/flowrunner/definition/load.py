"""``load_flow`` and ``validate_flow``: text in, a FlowDefinition (or every problem) out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flowrunner.definition.limits import UNLIMITED, FlowLimits
from flowrunner.definition.model import FlowDefinition, Metadata, freeze
from flowrunner.definition.source import SourceError, SourceMap, dotted, parse_yaml
from flowrunner.definition.triggers import build_triggers
from flowrunner.definition.validate import Checker
from flowrunner.durations import parse_duration
from flowrunner.errors import DefinitionError, Problem
from flowrunner.nodes.spec import BatchSpec, NodeSpec, RetrySpec
from flowrunner.plugins import NodeTypeRegistry, builtin_registry

if TYPE_CHECKING:
    from flowrunner.scripting.host import ScriptHost

# Path of the problem a sub-flow check returns for a file already being checked up the chain.
RECURSION = "(recursion)"


def validate_flow(
    text: str,
    *,
    source: str | None = None,
    registry: NodeTypeRegistry | None = None,
    base_path: Path | None = None,
    scripts: ScriptHost | None = None,
    limits: FlowLimits = UNLIMITED,
) -> list[Problem]:
    """Every error and warning in ``text``, sorted by position. Raises for bad input only
    when the text is over ``limits.max_bytes`` (``FlowTooLarge``: it is not read at all).

    With ``scripts`` (the sandbox, or another ``ScriptHost``), JavaScript in code
    params, hooks and non-path expressions is syntax-checked too.
    """
    problems, _ = check_text(
        text, source, registry, base_path, scripts, origin(source, base_path), limits
    )
    return problems


def load_flow(
    text: str,
    *,
    source: str | None = None,
    registry: NodeTypeRegistry | None = None,
    base_path: Path | None = None,
    scripts: ScriptHost | None = None,
    limits: FlowLimits = UNLIMITED,
) -> FlowDefinition:
    """The validated definition of ``text``; DefinitionError listing every problem otherwise
    (``FlowTooLarge`` for a text over ``limits.max_bytes``).

    Warnings do not stop loading; they are kept on ``FlowDefinition.warnings``.
    """
    problems, built = check_text(
        text, source, registry, base_path, scripts, origin(source, base_path), limits
    )
    if built is None:
        raise DefinitionError(problems, source=source)
    return built


def check_text(
    text: str,
    source: str | None,
    registry: NodeTypeRegistry | None,
    base_path: Path | None,
    scripts: ScriptHost | None,
    stack: tuple[Path, ...],
    limits: FlowLimits = UNLIMITED,
) -> tuple[list[Problem], FlowDefinition | None]:
    """Problems of ``text`` and, when it has no errors, its definition. ``stack`` holds the
    files being checked up the sub-flow chain (this one included), to catch recursion."""
    registry = registry if registry is not None else builtin_registry()
    limits.check_text(text, source)

    def subflow(full: Path) -> list[Problem]:
        if full in stack:
            chain = " → ".join(p.name for p in (*stack, full))
            return [Problem(RECURSION, f"sub-flow recursion: {chain}", source=str(full))]
        try:
            sub_text = full.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [Problem("(document)", f"cannot read it: {exc}", source=str(full))]
        found, _ = check_text(
            sub_text, str(full), registry, full.parent, scripts, (*stack, full), limits
        )
        return found

    try:
        parsed = parse_yaml(text)
    except SourceError as exc:
        return [replace(exc.problem, source=source)], None
    data = parsed.data
    if not isinstance(data, Mapping):
        what = "an empty document" if data is None else f"a {type(data).__name__}"
        problem = Problem(
            "(document)",
            f"a flow must be a mapping with metadata and nodes, got {what}",
            1,
            1,
            source=source,
        )
        return [*(replace(p, source=source) for p in parsed.problems), problem], None
    nodes = data.get("nodes")
    too_many = limits.nodes_message(len(nodes)) if isinstance(nodes, Mapping) else None
    if too_many is not None:
        # Alone, and before the other checks: they would take time in proportion to the size.
        line, column = parsed.positions.key(("nodes",)) or (None, None)
        hint = "split the flow into sub-flows, or raise FLOWRUNNER_MAX_FLOW_NODES"
        too_big = Problem("nodes", too_many, line, column, hint=hint, source=source)
        return [*(replace(p, source=source) for p in parsed.problems), too_big], None
    checker = Checker(
        data, parsed.positions, registry, base_path, scripts, subflow, limits.max_script_bytes
    )
    # The original decoded params (and batch items) as free-form values, so only there did
    # YAML 1.1 make `yes` a boolean or `010` octal; its typed fields kept the text.
    reread = [p for path, p in parsed.reread if _free_form(path)]
    problems = sorted(
        (replace(p, source=source) for p in [*parsed.problems, *reread, *checker.run()]),
        key=lambda p: (p.line is None, p.line or 0, p.column or 0),
    )
    if any(p.severity == "error" for p in problems) or checker.start is None:
        return problems, None
    version_text = parsed.numbers.get(("metadata", "version"))
    return problems, _build(data, parsed.positions, checker.start, problems, source, version_text)


def _free_form(path: tuple[str | int, ...]) -> bool:
    """Under ``nodes.<id>.params`` or ``nodes.<id>.batch.items``."""
    if len(path) < 3 or path[0] != "nodes":
        return False
    return path[2] == "params" or path[2:4] == ("batch", "items")


def origin(source: str | None, base_path: Path | None) -> tuple[Path, ...]:
    """The file being checked, when known: where sub-flow recursion detection starts."""
    if not source:
        return ()
    for candidate in (Path(source), (base_path or Path.cwd()) / Path(source).name):
        if candidate.is_file():
            return (candidate.resolve(),)
    return ()


def _build(
    data: Mapping[str, Any],
    positions: SourceMap,
    start: str,
    problems: list[Problem],
    source: str | None,
    version_text: str | None = None,
) -> FlowDefinition:
    meta = data["metadata"]
    version = meta.get("version")
    if version_text is not None:
        version = version_text  # free text: `1.10` as written, not the number 1.1
    metadata = Metadata(
        name=meta["name"],
        description=meta.get("description"),
        version=None if version is None else str(version),
        start=meta.get("start"),
        webhooks=tuple(freeze(w) for w in meta.get("webhooks", ())),
        queue=meta.get("queue"),
        on_failure=(meta.get("on_failure") or {}).get("flow"),
    )
    nodes = {node_id: _node(node_id, node, positions) for node_id, node in data["nodes"].items()}
    return FlowDefinition(
        metadata=metadata,
        nodes=MappingProxyType(nodes),
        start=start,
        triggers=build_triggers(data),
        problems=tuple(problems),
        source=source,
        positions=MappingProxyType({dotted(p): pos for p, pos in positions.values.items()}),
    )


def _node(node_id: str, node: Mapping[str, Any], positions: SourceMap) -> NodeSpec:
    retry = node.get("retry")
    batch = node.get("batch")
    timeout = node.get("timeout")
    line, column = positions.key(("nodes", node_id)) or (None, None)
    return NodeSpec(
        id=node_id,
        type=node["type"],
        params=freeze(node.get("params", {})),
        next=MappingProxyType(dict(node.get("next", {}))),
        retry=_retry(retry) if retry is not None else None,
        batch=_batch(batch) if batch is not None else None,
        timeout=parse_duration(timeout) if timeout is not None else None,
        hooks=MappingProxyType(dict(node.get("hooks", {}))),
        description=node.get("description"),
        line=line,
        column=column,
    )


def _retry(retry: Mapping[str, Any]) -> RetrySpec:
    max_wait = retry.get("max_wait")
    return RetrySpec(
        max_retries=retry.get("max_retries", 0),
        wait=parse_duration(retry.get("wait", 0)),
        backoff=retry.get("backoff", "fixed"),
        max_wait=parse_duration(max_wait) if max_wait is not None else None,
        jitter=float(retry.get("jitter", 0.0)),
    )


def _batch(batch: Mapping[str, Any]) -> BatchSpec:
    return BatchSpec(
        items=freeze(batch.get("items")),
        strategy=batch.get("strategy", "serial"),
        max_parallel=batch.get("max_parallel"),
    )
