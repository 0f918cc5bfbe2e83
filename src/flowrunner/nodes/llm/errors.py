"""What can go wrong calling a model, as errors a flow can route on and a user can read.

    ExecutionError
    └── LLMError                 llm_error: any other failure of the call (bad request, 5xx)
        ├── LLMAuthFailed        llm_auth_failed: the API key was refused (401/403)
        ├── LLMRateLimited       llm_rate_limited: 429; ``retry_after`` seconds when the
        │                        provider said (the node's ``retry`` waits at least that long)
        ├── LLMContextTooLong    llm_context_too_long: the prompt is over the model's window
        ├── LLMTimeout           llm_timeout: no answer within ``timeout``
        ├── LLMContentFiltered   llm_content_filtered: the provider refused the content
        ├── LLMUnreachable       llm_unreachable: cannot connect to the endpoint
        ├── LLMOutputInvalid     llm_output_invalid: structured output still invalid after
        │                        the repair attempts
        └── LLMBudgetExceeded    llm_budget_exceeded: the call does not fit in what is left
                                 of the account's monthly token budget

Messages never quote the request (it may hold a secret); they name the node, the provider
and the provider's own error text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from flowrunner.errors import DestinationRefused, ExecutionError, FlowrunnerError

# A Retry-After larger than this is not waited for (a node would sit idle for hours).
MAX_RETRY_AFTER = 300.0


class LLMError(ExecutionError):
    code = "llm_error"


class LLMAuthFailed(LLMError):
    code = "llm_auth_failed"


class LLMRateLimited(LLMError):
    code = "llm_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any):
        super().__init__(message, retry_after=retry_after, **context)
        # Read by the engine's retry loop: it waits at least this long before retrying.
        self.retry_after = retry_after


class LLMContextTooLong(LLMError):
    code = "llm_context_too_long"


class LLMTimeout(LLMError):
    code = "llm_timeout"


class LLMContentFiltered(LLMError):
    code = "llm_content_filtered"


class LLMUnreachable(LLMError):
    code = "llm_unreachable"


class LLMOutputInvalid(LLMError):
    code = "llm_output_invalid"


class LLMBudgetExceeded(LLMError):
    code = "llm_budget_exceeded"


_CONTEXT_WORDS = (
    "context_length",
    "context length",
    "too many tokens",
    "prompt is too long",
    "maximum context",
    "context window",
)
_FILTER_WORDS = ("content_filter", "content filter", "content_policy", "safety")


def answer_error(
    provider: str, status: int, body: object, fallback: str, headers: Mapping[str, str]
) -> LLMError:
    """The error for an SDK's ``APIStatusError``: its ``status_code``, ``body``, ``message``
    (``fallback``) and ``response.headers``. Both wire formats put the details under
    ``error`` (OpenAI: ``{message, type, code}``; Anthropic: ``{type, message}``); some
    OpenAI-compatible servers send them bare."""
    found = body if isinstance(body, Mapping) else {}
    inner = found.get("error", found)
    detail: Mapping[str, Any] = inner if isinstance(inner, Mapping) else {}
    code = detail.get("code") or detail.get("type")
    message = str(detail.get("message") or fallback)
    return status_error(provider, status, message, headers, str(code) if code else None)


def status_error(
    provider: str, status: int, message: str, headers: Mapping[str, str], code: str | None
) -> LLMError:
    """The error for an HTTP error answer of a provider."""
    text = f"{provider} answered {status}: {message}"
    lowered = f"{code or ''} {message}".lower()
    if status in (401, 403):
        return LLMAuthFailed(text, status=status)
    if status == 429:
        return LLMRateLimited(text, retry_after=retry_after(headers), status=status)
    if status in (400, 413, 422) and any(w in lowered for w in _CONTEXT_WORDS):
        return LLMContextTooLong(text, status=status)
    if any(w in lowered for w in _FILTER_WORDS):
        return LLMContentFiltered(text, status=status)
    if status in (408, 504):
        return LLMTimeout(text, status=status)
    return LLMError(text, status=status)


def transport_error(
    provider: str, exc: BaseException, *, timeout: float | None = None
) -> FlowrunnerError:
    """The error for a call that failed below HTTP: the SDK's connection error (its timeout
    included), or, mid-stream, httpx2's own error or the reply bound (the SDKs do not wrap
    what fails while a stream is read). ``timeout`` is the call's, for the message.

    A refused destination (the SSRF guard) comes out as itself, whatever wrapped it.
    """
    # Imported here: the LLM node types load with every server; httpx2 (~20 ms, ~1.5 MB)
    # with the first model call, which is loaded by then.
    import httpx2

    from flowrunner.outbound.httpx2_client import ResponseTooLarge
    from flowrunner.outbound.sdk_client import wrapped

    refused = wrapped(exc, DestinationRefused)
    if isinstance(refused, DestinationRefused):
        return refused
    if wrapped(exc, ResponseTooLarge) is not None:
        return LLMError(f"{provider}: the reply is larger than the limit")
    if wrapped(exc, httpx2.TimeoutException) is not None:
        within = f" within {timeout:g} s" if timeout is not None else ""
        return LLMTimeout(f"{provider}: no answer{within}")
    if isinstance(exc, httpx2.HTTPError):  # raised as is: the stream was being read
        return LLMUnreachable(f"{provider}: the reply was cut off: {exc}")
    cause = exc.__cause__
    why = str(cause) if cause is not None and str(cause) else str(exc) or type(exc).__name__
    return LLMUnreachable(f"{provider}: cannot reach the endpoint: {why}")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return min(max(float(millis) / 1000, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER)
