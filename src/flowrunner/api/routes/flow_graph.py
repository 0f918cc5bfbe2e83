"""``GET /api/v1/flows/{id}/graph``: a flow version's nodes and labelled edges, for drawing.

The dashboard lays the graph out itself (dagre, in the browser); this answers what to draw:
each node's type and badges (retries, batch strategy, timeout), every ``next`` edge with its
action (``error`` edges included), and the start node.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from flowrunner.api.deps import CurrentAccount, Svc
from flowrunner.api.schemas.common import COMMON_ERRORS
from flowrunner.definition.outline import FlowOutline, flow_outline

router = APIRouter(prefix="/flows", tags=["flows"], responses=COMMON_ERRORS)

MAX_VERSION = 2_147_483_647


class GraphNode(BaseModel):
    id: str
    type: str
    description: str | None
    retries: int
    batch: str | None
    timeout: str | None
    line: int | None


class GraphEdge(BaseModel):
    source: str
    target: str
    action: str


class FlowGraph(BaseModel):
    flow_id: str
    version: int
    name: str
    start: str | None
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    @classmethod
    def of(cls, flow_id: str, version: int, outline: FlowOutline) -> FlowGraph:
        return cls(
            flow_id=flow_id,
            version=version,
            name=outline.name,
            start=outline.start,
            nodes=[GraphNode.model_validate(n, from_attributes=True) for n in outline.nodes],
            edges=[GraphEdge.model_validate(e, from_attributes=True) for e in outline.edges],
        )


@router.get(
    "/{flow_id}/graph",
    response_model=FlowGraph,
    summary="The nodes and edges of a version (the current one unless `version`)",
)
async def flow_graph(
    flow_id: Annotated[str, Path(max_length=64)],
    account: CurrentAccount,
    svc: Svc,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> FlowGraph:
    if version is None:
        stored = (await svc.flows.get(account.id, flow_id)).version
    else:
        stored = await svc.flows.version(account.id, flow_id, version)
    # Parsing a large flow takes a while: off the event loop.
    outline = await asyncio.to_thread(flow_outline, stored.yaml)
    return FlowGraph.of(flow_id, stored.number, outline)
