"""``triggers:`` in a flow file: what loads, and what is refused with its position."""

from __future__ import annotations

import pytest

from flowrunner.definition import load_flow
from flowrunner.definition.triggers import ScheduleSpec, WebhookSpec
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
