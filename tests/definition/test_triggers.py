"""``triggers:`` in a flow file: what loads, and what is refused with its position."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowrunner.definition import load_flow
from flowrunner.definition.triggers import ScheduleSpec, WebhookSpec, cron_sim
from flowrunner.errors import DefinitionError

FLOW = """metadata: {name: t}
triggers:
%s
nodes:
  a: {type: log, params: {message: hi}}
"""


def test_webhook_and_schedule_triggers_load_as_specs() -> None:
    text = FLOW % (
        "  - webhook: {response: sync, timeout: 10s, verify: {scheme: github, secret: GH}}\n"
        "  - schedule: {cron: '*/5 * * * *', timezone: Europe/Berlin, input: {a: 1}}\n"
        "  - schedule: {interval: 10m, catch_up: all}"
    )
    webhook, cron, interval = load_flow(text).triggers
    assert isinstance(webhook, WebhookSpec)
    assert (webhook.name, webhook.response, webhook.timeout) == ("webhook", "sync", 10.0)
    assert isinstance(cron, ScheduleSpec)
    assert cron.timezone == "Europe/Berlin"
    assert (cron.name, interval.name) == ("schedule", "schedule-2")
    assert isinstance(interval, ScheduleSpec)
    assert interval.interval == 600.0
    assert interval.catch_up == "all"


@pytest.mark.parametrize(
    ("entry", "path", "words"),
    [
        ("  - schedule: {cron: '61 * * * *'}", "triggers[0].schedule.cron", "cron"),
        ("  - schedule: {interval: 500ms}", "triggers[0].schedule.interval", "at least 1s"),
        ("  - schedule: {cron: '@daily', timezone: Mars/Base}", "triggers[0].schedule.timezone",
         "unknown time zone"),
        ("  - webhook: {verify: {scheme: stripe}}", "triggers[0].webhook.verify", "needs a secret"),
        ("  - webhook: {name: a}\n  - webhook: {name: a}", "triggers[1].webhook.name", "twice"),
        ("  - schedule: {}", "triggers[0].schedule", ""),
        ("  - cron: {}", "triggers[0].cron", "unknown trigger kind"),
    ],
)  # fmt: skip
def test_bad_triggers_are_refused_with_their_place(entry: str, path: str, words: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_flow(FLOW % entry)
    problems = caught.value.problems
    assert any(p.path.startswith(path) and words in p.message for p in problems), problems
    assert all(p.line is not None for p in problems)


def test_the_original_cron_node_is_a_schedule_declaration() -> None:
    text = """metadata: {name: c}
nodes:
  tick:
    type: cron
    params: {schedule: "0 9 * * 1-5", timezone: UTC}
    next: {default: hi}
  hi: {type: log, params: {message: hi}}
"""
    (spec,) = load_flow(text).triggers
    assert isinstance(spec, ScheduleSpec)
    assert (spec.name, spec.cron) == ("cron-node.tick", "0 9 * * 1-5")
    with pytest.raises(DefinitionError, match="not a cron expression"):
        load_flow(text.replace("0 9 * * 1-5", "every monday"))


def test_the_originals_typed_triggers_load_as_aliases_of_the_keyed_form() -> None:
    typed = FLOW % (
        '  - {type: cron, schedule: "*/5 * * * *", timezone: Europe/Berlin, input: {a: 1}}\n'
        "  - {type: interval, interval: 10m, catch_up: all}\n"
        "  - {type: webhook, response: sync, verify: {scheme: github, secret: GH}}"
    )
    keyed = FLOW % (
        "  - schedule: {cron: '*/5 * * * *', timezone: Europe/Berlin, input: {a: 1}}\n"
        "  - schedule: {interval: 10m, catch_up: all}\n"
        "  - webhook: {response: sync, verify: {scheme: github, secret: GH}}"
    )
    assert load_flow(typed).triggers == load_flow(keyed).triggers
    (cron,) = load_flow(FLOW % "  - {type: cron, expression: '0 3 * * *', name: nightly}").triggers
    assert isinstance(cron, ScheduleSpec)
    assert (cron.name, cron.cron) == ("nightly", "0 3 * * *")


@pytest.mark.parametrize(
    ("entry", "path", "at", "words"),
    [
        ("  - {type: cron, schedule: '61 * * * *'}", "triggers[0].schedule", "'61", "cron"),
        ("  - type: cron\n    timezone: UTC\n    cron: 'x y'", "triggers[0].cron", "'x y'", "cron"),
        ("  - {type: cron, timezone: UTC}", "triggers[0]", "{type", "needs schedule"),
        ("  - {type: cron, schedule: '0 3 * * *', interval: 1m}", "triggers[0]", "{type",
         "not both"),
        ("  - {type: interval, interval: 500ms}", "triggers[0].interval", "500ms", "at least 1s"),
        ("  - {type: crn, schedule: '0 3 * * *'}", "triggers[0].type", "crn", "not one of"),
        ("  - {type: cron, schedule: '0 3 * * *', timezone: Mars/Base}", "triggers[0].timezone",
         "Mars/Base", "unknown time zone"),
        ("  - {type: webhook, verify: {scheme: stripe}}", "triggers[0].verify", "{scheme",
         "needs a secret"),
        ("  - {type: webhook, response: later}", "triggers[0].response", "later", "not one of"),
        ("  - {type: cron, schedule: '0 3 * * *', name: a}\n  - {type: webhook, name: a}",
         "triggers[1].name", None, "twice"),
    ],
)  # fmt: skip
def test_typed_trigger_problems_carry_the_line_and_column_of_the_key_as_written(
    entry: str, path: str, at: str | None, words: str
) -> None:
    text = FLOW % entry
    with pytest.raises(DefinitionError) as caught:
        load_flow(text)
    found = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert found, caught.value.problems
    assert found[0].line is not None
    if at is not None:  # where the value (or the entry) is written in the text
        before = text[: text.index(at)]
        where = (before.count("\n") + 1, len(before) - before.rfind("\n"))
        assert (found[0].line, found[0].column) == where, found[0]


def test_an_unknown_key_in_a_typed_trigger_is_a_warning_with_a_hint() -> None:
    definition = load_flow(FLOW % "  - {type: cron, schedule: '0 3 * * *', timezon: UTC}")
    [warning] = [w for w in definition.warnings if "timezon" in w.message]
    assert warning.path == "triggers[0].timezon"
    assert warning.hint == "did you mean 'timezone'?"


def test_cron_aliases_are_expanded_to_their_five_fields() -> None:
    (daily,) = load_flow(FLOW % "  - {type: cron, schedule: '@daily'}").triggers
    assert isinstance(daily, ScheduleSpec)
    start = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert next(cron_sim("@daily", start)) == datetime(2026, 3, 2, tzinfo=UTC)
    assert next(cron_sim("@hourly", start)) == datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert next(cron_sim("@weekly", start)) == datetime(2026, 3, 8, tzinfo=UTC)  # a Sunday
