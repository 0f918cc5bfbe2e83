"""Log filters: which stored events a log page keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowrunner.executions import events as ev
from flowrunner.executions.logs import LogFilter
from flowrunner.storage import ExecutionEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(kind: str, at: datetime, **data: object) -> ExecutionEvent:
    return ExecutionEvent("e", "a", 1, kind, data, at)


def test_a_filter_keeps_log_lines_only_unless_told_other_types() -> None:
    line, node = _event(ev.LOG, T0, node_id="a"), _event(ev.NODE, T0, node_id="a")
    assert [LogFilter().keeps(e) for e in (line, node)] == [True, False]
    assert [LogFilter(types=()).keeps(e) for e in (line, node)] == [True, True]


def test_a_time_window_includes_its_start_and_excludes_its_end() -> None:
    window = LogFilter(since=T0, until=T0 + timedelta(seconds=1))
    at = [T0 - timedelta(microseconds=1), T0, T0 + timedelta(seconds=1)]
    assert [window.keeps(_event(ev.LOG, t)) for t in at] == [False, True, False]


def test_node_and_level_must_both_match() -> None:
    wanted = LogFilter(node_id="a", level="warning")
    assert wanted.keeps(_event(ev.LOG, T0, node_id="a", level="warning"))
    assert not wanted.keeps(_event(ev.LOG, T0, node_id="a", level="info"))
    assert not wanted.keeps(_event(ev.LOG, T0, node_id="b", level="warning"))
