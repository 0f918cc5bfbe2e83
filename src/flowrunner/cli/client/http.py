"""The HTTP side of the client: one httpx client per command, API errors as ClientError.

Every error the server answers has one envelope (``{"error": {"code", "message",
"details", "correlation_id"}}``, docs/api.md); it becomes one line with the server's message
and correlation id, and the exit code of its kind — never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flowrunner import __version__
from flowrunner.cli.client.errors import FAILED, NOT_FOUND_OR_AUTH, ClientError

if TYPE_CHECKING:
    import httpx

API = "/api/v1"
# A page of a listing: the API's maximum, so a long listing takes few round trips.
PAGE = 1000
# Seconds: any request, and connecting. (httpx is imported by the first Api: `--help` and
# the local commands never pay for it.)
TIMEOUT, CONNECT_TIMEOUT = 30.0, 10.0
_AUTH_OR_MISSING = {401, 403, 404}


def segment(value: str) -> str:
    """``value`` as one path segment (a flow name may hold ``/`` or spaces)."""
    return quote(value, safe="")


class Api:
    """The server's API at ``url``, authenticated with ``token`` (or ``auth``) if given."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        auth: tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        headers = {"User-Agent": f"flowrunner-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + API,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                content=content,
                headers=headers,
            )
        except httpx.TimeoutException as exc:
            raise ClientError(f"{self.url} did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.json("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.json("POST", path, **kwargs)

    def items(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated listing (at most ``limit``), fetching pages as needed."""
        query = dict(params or {})
        seen = 0
        cursor: str | None = None
        while True:
            want = PAGE if limit is None else min(PAGE, limit - seen)
            page = self.get(path, params={**query, "limit": want, "cursor": cursor})
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return


def error_of(response: httpx.Response) -> ClientError:
    """The ClientError for an error response: the server's message, code and correlation id."""
    status = response.status_code
    correlation = response.headers.get("x-request-id")
    code: str | None = None
    message = f"HTTP {status} {response.reason_phrase}"
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        message = str(error.get("message") or message)
        correlation = error.get("correlation_id") or correlation
        details = error.get("details")
        if code == "validation_error" and isinstance(details, list):
            message = _validation_message(message, details)
    if status == 401:
        message += " — log in again: flowrunner login"
    if status == 429 and response.headers.get("retry-after"):
        message += f" (retry after {response.headers['retry-after']} s)"
    failure = ClientError(
        message,
        exit_code=NOT_FOUND_OR_AUTH if status in _AUTH_OR_MISSING else FAILED,
        status=status,
        error_code=code,
        correlation_id=correlation,
    )
    failure.context["details"] = error.get("details") if isinstance(error, dict) else None
    return failure


def _validation_message(message: str, details: list[Any]) -> str:
    """FastAPI's 422 names each bad field under ``loc``; say which, briefly."""
    parts = []
    for item in details[:3]:
        if isinstance(item, dict):
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{where}: {item.get('msg') or item.get('message')}")
    return f"{message}: {'; '.join(parts)}" if parts else message
