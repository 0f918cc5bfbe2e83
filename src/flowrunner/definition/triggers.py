"""The flow file's ``triggers:`` (and the original's ``cron`` nodes) as typed specs.

The JSON Schema checks the shape; this module checks what it cannot (a cron expression that
parses, a time zone that exists, an interval of at least a second, a secret for a scheme that
needs one, unique names) and builds ``WebhookSpec`` / ``ScheduleSpec`` values that the
``triggers`` service saves when a flow version is saved.

The original flowrunner's form, ``triggers: [{type: cron, schedule: "<cron>"}]`` (also
``type: schedule``, ``interval`` or ``webhook`` with the fields beside ``type``), is read as an
alias of ``{schedule: {cron: ...}}`` / ``{webhook: {...}}``: ``_entries`` turns either form
into (kind, body), and problems are reported at the keys as written.

Cron expressions are parsed by ``cronsim`` (five fields, or six with seconds last is *not*
supported; ``L``, ``#`` and ``W`` are). cronsim has no ``@hourly``-style aliases: ``cron_sim``
expands them to their five-field meaning first. Time zones come from
the IANA database through ``zoneinfo``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from flowrunner.durations import parse_duration

Scheme = Literal["none", "standard", "github", "stripe", "slack", "hmac", "token"]
CatchUp = Literal["none", "latest", "all"]
SCHEMES_WITHOUT_SECRET = frozenset({"none"})
MIN_INTERVAL = 1.0
MAX_SYNC_TIMEOUT = 300.0
CRON_NODE_KEYS = ("cron", "schedule", "expression")

Report = Callable[[tuple[str | int, ...], str], None]
"""(path, message): where a problem was found, as the validator reports it."""


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    name: str
    methods: tuple[str, ...] = ("POST",)
    response: Literal["async", "sync"] = "async"
    timeout: float = 30.0
    verify: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({"scheme": "none"}))
    content_types: tuple[str, ...] = ()
    max_body: int | None = None
    rate_limit: int | None = None
    enabled: bool = True

    kind: Literal["webhook"] = "webhook"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    name: str
    cron: str | None = None
    interval: float | None = None
    timezone: str = "UTC"
    input: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    catch_up: CatchUp = "latest"
    enabled: bool = True

    kind: Literal["schedule"] = "schedule"


TriggerSpec = WebhookSpec | ScheduleSpec


ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_sim(expression: str, start: datetime) -> CronSim:
    """The occurrences of ``expression`` after ``start`` (aliases expanded)."""
    text = expression.strip()
    return CronSim(ALIASES.get(text.lower(), text), start)


def check_cron(expression: str, timezone: str = "UTC") -> str | None:
    """Why ``expression`` is not a usable cron expression, or None."""
    try:
        cron_sim(expression, datetime.now(ZoneInfo(timezone)))
    except (CronSimError, ValueError) as exc:
        return f"not a cron expression: {exc}"
    except ZoneInfoNotFoundError:
        return None  # reported on the timezone field
    return None


def check_timezone(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (an IANA name such as Europe/Berlin or UTC)"
    return None


def check_triggers(data: Mapping[str, Any], report: Report) -> None:
    """Report what the schema cannot see in ``triggers:`` and in ``cron`` nodes."""
    names: set[str] = set()
    for entry in _entries(data):
        kind, body, path = entry.kind, entry.body, entry.path
        if kind not in ("webhook", "schedule"):
            # Unknown keys are warnings elsewhere; here it would be a trigger never made.
            report(path, f"unknown trigger kind {kind!r} (webhook or schedule)")
            continue
        if entry.missing:
            report(path, entry.missing)
            continue
        name = body.get("name") or _default_name(kind, names)
        if name in names:
            report((*path, "name"), f"trigger name {name!r} is used twice in this flow")
        names.add(str(name))
        if kind == "schedule":
            _check_schedule(body, path, entry.at_key(report))
        elif kind == "webhook":
            _check_webhook(body, path, report)
    nodes = data.get("nodes")
    for node_id, node in nodes.items() if isinstance(nodes, Mapping) else ():
        if isinstance(node, Mapping) and node.get("type") == "cron":
            params = node.get("params")
            params = params if isinstance(params, Mapping) else {}
            path = ("nodes", node_id, "params")
            if not any(params.get(k) for k in CRON_NODE_KEYS) and "interval" not in params:
                report(path, "a cron node needs params.schedule (a cron expression) or interval")
                continue
            key = next((k for k in CRON_NODE_KEYS if params.get(k)), "interval")

            def at_key(where: tuple[str | int, ...], message: str, key: str = key) -> None:
                # The node's own param name (schedule:, cron: ...), not the trigger field's.
                report((*where[:-1], key) if where[-1] in ("cron", "interval") else where, message)

            _check_schedule(_cron_node_schedule(params), path, at_key)


def _check_schedule(body: Mapping[str, Any], path: tuple[str | int, ...], report: Report) -> None:
    tz = body.get("timezone", "UTC")
    if isinstance(tz, str) and (problem := check_timezone(tz)):
        report((*path, "timezone"), problem)
        tz = "UTC"
    cron = body.get("cron")
    if isinstance(cron, str) and (problem := check_cron(cron, str(tz))):
        report((*path, "cron"), problem)
    interval = body.get("interval")
    if interval is not None:
        try:
            seconds = parse_duration(interval)
        except ValueError as exc:
            report((*path, "interval"), str(exc))
        else:
            if seconds < MIN_INTERVAL:
                report((*path, "interval"), "an interval must be at least 1s")


def _check_webhook(body: Mapping[str, Any], path: tuple[str | int, ...], report: Report) -> None:
    verify = body.get("verify")
    if isinstance(verify, Mapping):
        scheme = verify.get("scheme")
        if scheme not in SCHEMES_WITHOUT_SECRET and not verify.get("secret"):
            report((*path, "verify"), f"scheme {scheme!r} needs a secret (a vault secret name)")
        if scheme == "hmac" and not verify.get("header"):
            report((*path, "verify"), "scheme 'hmac' needs a header (where the signature is)")
    timeout = body.get("timeout")
    if timeout is not None:
        try:
            seconds = parse_duration(timeout)
        except ValueError:
            return  # the schema's pattern reports it
        if seconds > MAX_SYNC_TIMEOUT:
            report((*path, "timeout"), f"a sync timeout is at most {MAX_SYNC_TIMEOUT:g}s")


def build_triggers(data: Mapping[str, Any]) -> tuple[TriggerSpec, ...]:
    """The triggers of a checked flow document (``check_triggers`` found no error)."""
    specs: list[TriggerSpec] = []
    names: set[str] = set()
    for entry in _entries(data):
        kind, body = entry.kind, entry.body
        name = str(body.get("name") or _default_name(kind, names))
        names.add(name)
        specs.append(schedule_spec(name, body) if kind == "schedule" else webhook_spec(name, body))
    for node_id, node in (data.get("nodes") or {}).items():
        if isinstance(node, Mapping) and node.get("type") == "cron":
            body = _cron_node_schedule(node.get("params") or {})
            specs.append(schedule_spec(f"cron-node.{node_id}", body))
    return tuple(specs)


def webhook_spec(name: str, body: Mapping[str, Any]) -> WebhookSpec:
    timeout = body.get("timeout")
    return WebhookSpec(
        name=name,
        methods=tuple(body.get("methods") or ("POST",)),
        response=body.get("response", "async"),
        timeout=parse_duration(timeout) if timeout is not None else 30.0,
        verify=MappingProxyType(dict(body.get("verify") or {"scheme": "none"})),
        content_types=tuple(body.get("content_types") or ()),
        max_body=body.get("max_body"),
        rate_limit=body.get("rate_limit"),
        enabled=bool(body.get("enabled", True)),
    )


def schedule_spec(name: str, body: Mapping[str, Any]) -> ScheduleSpec:
    interval = body.get("interval")
    return ScheduleSpec(
        name=name,
        cron=body.get("cron"),
        interval=parse_duration(interval) if interval is not None else None,
        timezone=str(body.get("timezone") or "UTC"),
        input=MappingProxyType(dict(body.get("input") or {})),
        catch_up=body.get("catch_up", "latest"),
        enabled=bool(body.get("enabled", True)),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    """One ``triggers:`` entry in the keyed form's terms: ``kind`` (webhook, schedule),
    ``body`` (its fields), ``path`` (where the fields are written) and, for the original's
    ``type:`` form, which key holds the cron expression as written."""

    kind: str
    body: Mapping[str, Any]
    path: tuple[str | int, ...]
    cron_key: str = "cron"
    missing: str | None = None
    """Why the entry cannot be a trigger although its shape is valid (no expression)."""

    def at_key(self, report: Report) -> Report:
        if self.cron_key == "cron":
            return report

        def reported(where: tuple[str | int, ...], message: str) -> None:
            # At ``schedule:`` (or ``expression:``), where the expression is written.
            report((*where[:-1], self.cron_key) if where[-1] == "cron" else where, message)

        return reported


TYPED_SCHEDULES = ("cron", "schedule", "interval")


def _entries(data: Mapping[str, Any]) -> list[_Entry]:
    """Every well-shaped ``triggers:`` entry, either form (the schema reports the others)."""
    raw = data.get("triggers")
    found: list[_Entry] = []
    for index, entry in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(entry, Mapping):
            continue
        if "type" in entry:
            typed = _typed(entry, ("triggers", index))
            if typed is not None:
                found.append(typed)
            continue
        if len(entry) != 1:
            continue
        kind, body = next(iter(entry.items()))
        if isinstance(body, Mapping):
            found.append(_Entry(str(kind), body, ("triggers", index, kind)))
        elif kind not in ("webhook", "schedule"):
            found.append(_Entry(str(kind), {}, ("triggers", index, kind)))
    return found


def _typed(entry: Mapping[str, Any], path: tuple[str | int, ...]) -> _Entry | None:
    """The original's ``{type: cron, schedule: ...}`` as a keyed entry."""
    kind = entry.get("type")
    fields = {k: v for k, v in entry.items() if k != "type"}
    if kind == "webhook":
        return _Entry("webhook", fields, path)
    if kind not in TYPED_SCHEDULES:
        return None  # the schema's enum reports it
    cron_key = next((k for k in CRON_NODE_KEYS if fields.get(k)), None)
    body = {k: v for k, v in fields.items() if k not in CRON_NODE_KEYS}
    missing = None
    if cron_key is not None:
        body["cron"] = fields[cron_key]
        if "interval" in fields:
            missing = f"type {kind}: give {cron_key} or interval, not both"
    elif "interval" not in fields:
        missing = f"type {kind} needs schedule (a cron expression) or interval"
    return _Entry("schedule", body, path, cron_key or "cron", missing)


def _cron_node_schedule(params: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {k: params[k] for k in ("timezone", "input", "catch_up") if k in params}
    cron = next((params[k] for k in CRON_NODE_KEYS if params.get(k)), None)
    if cron is not None:
        body["cron"] = str(cron)
    elif "interval" in params:
        body["interval"] = params["interval"]
    return body


def _default_name(kind: str, taken: set[str]) -> str:
    name, n = kind, 1
    while name in taken:
        n += 1
        name = f"{kind}-{n}"
    return name
