"""``install_ui(app)``: the dashboard page, its static files, and a local ``/docs``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
UI_PATH = "/ui"
STATIC_PATH = f"{UI_PATH}/static"

# The page loads only its own files and talks only to its own origin (HTTP and WebSocket):
# an injected script could not load from, or send data to, anywhere else.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": UI_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def install_ui(app: FastAPI, *, openapi_url: str) -> None:
    """Serve the dashboard at ``/ui/`` and Swagger UI (local assets) at ``/docs``."""

    @app.get(UI_PATH, include_in_schema=False)
    async def ui_redirect() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/", status_code=308)

    @app.get(f"{UI_PATH}/", include_in_schema=False)
    async def ui_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API docs",
            swagger_js_url=f"{STATIC_PATH}/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.svg",
        )

    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="ui-static")
