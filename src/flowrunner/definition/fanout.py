"""Where a ``split``'s branches meet: the ``join`` node they all reach, found from the graph.

Each ``next`` edge of a split (except ``error``, and ``END``) starts a branch. Following every
edge from the branch starts, the first ``join`` node on each path is where that path meets the
others; a nested split is stepped over (its branches meet at its own join, and the walk goes
on after that). All paths must meet at the same join, or at none (the branches then end where
their paths end, and the run ends after the split). Validation reports a split with no
branch or with several joins; compiling wires the split to its join.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["JOIN", "SPLIT", "branches_of", "meeting_points"]

SPLIT = "split"
JOIN = "join"
_END = "END"  # graph.END_TARGET (not imported: graph imports the source layer only)

Next = Callable[[str], Mapping[str, str]]
TypeOf = Callable[[str], str | None]


def branches_of(next_of: Next, split_id: str, exists: Callable[[str], bool]) -> dict[str, str]:
    """A split's branches: action → first node, in ``next`` order."""
    return {
        action: target
        for action, target in next_of(split_id).items()
        if action != "error" and (target != _END or exists(target))
    }


def meeting_points(
    split_id: str,
    next_of: Next,
    type_of: TypeOf,
    _active: frozenset[str] = frozenset(),
) -> set[str]:
    """The join nodes the branches of ``split_id`` reach first (one, or none, when valid)."""
    active = _active | {split_id}
    found: set[str] = set()
    seen: set[str] = set()
    todo = list(branches_of(next_of, split_id, lambda n: type_of(n) is not None).values())
    while todo:
        node = todo.pop()
        if node in seen or type_of(node) is None:
            continue  # visited, or END / a missing target (reported elsewhere)
        seen.add(node)
        kind = type_of(node)
        if kind == JOIN:
            found.add(node)
            continue
        if kind == SPLIT and node not in active:
            inner = meeting_points(node, next_of, type_of, active)
            for join in inner:  # the walk goes on after the nested split's join
                todo.extend(next_of(join).values())
            todo.extend(t for a, t in next_of(node).items() if a == "error")
            continue
        todo.extend(next_of(node).values())
    return found
