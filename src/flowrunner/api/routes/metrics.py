"""``/metrics``: the Prometheus text exposition (docs/operations.md).

Metrics name flows and routes and count tenants' traffic, so they are not public by default:
a scrape presents the scrape token (``FLOWRUNNER_METRICS_TOKEN``) or an admin's API token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from flowrunner.api.deps import BasicCredentials, BearerCredentials, Svc, current_account
from flowrunner.errors import Forbidden, NotFound
from flowrunner.metrics import Metrics
from flowrunner.metrics.registry import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (scrape token or an admin's token)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def metrics(
    request: Request,
    svc: Svc,
    basic: BasicCredentials,
    bearer: BearerCredentials,
) -> Response:
    found: Metrics | None = getattr(request.app.state, "metrics", None)
    if found is None:
        raise NotFound("metrics are turned off (FLOWRUNNER_METRICS_ENABLED=false)")
    if not svc.settings.metrics_public and not _scrape_token(svc, bearer):
        account = await current_account(request, basic, bearer)
        if not account.is_admin:
            raise Forbidden("metrics need the scrape token or an admin's token")
    return Response(found.render(), media_type=CONTENT_TYPE)


def _scrape_token(svc: Svc, bearer: HTTPAuthorizationCredentials | None) -> bool:
    expected = svc.settings.metrics_token
    if expected is None or bearer is None:
        return False
    return hmac.compare_digest(bearer.credentials.encode(), expected.get_secret_value().encode())
