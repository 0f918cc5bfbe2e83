"""The dashboard's page, its static files and ``/docs`` as served by the app (no browser)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from flowrunner.ui import STATIC_DIR
from tests.api.helpers import Api

ROOT = Path(__file__).parents[2]


async def test_ui_redirects_to_the_page_which_forbids_other_origins(api: Api) -> None:
    redirect = await api.client.get("/ui")
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/ui/")
    page = await api.client.get("/ui/")
    assert page.status_code == 200
    assert '<script type="module" src="/ui/static/js/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_every_module_the_app_imports_is_served(api: Api) -> None:
    """Walk the ES-module imports from app.js: each one is a file the server answers."""
    pending, seen = ["/ui/static/js/app.js"], set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await api.client.get(url)
        assert response.status_code == 200, url
        assert "javascript" in response.headers["content-type"], url
        base = url.rsplit("/", 1)[0]
        for target in re.findall(r"^import .* from '([^']+)';$", response.text, re.M):
            parts = f"{base}/{target}".split("/")
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            pending.append("/".join(resolved))
    assert "/ui/static/vendor/dagre/dagre.esm.js" in seen
    assert len(seen) >= 10


async def test_docs_load_swagger_ui_from_this_server_not_a_cdn(api: Api) -> None:
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", docs.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/ui/static/"), asset
        assert (await api.client.get(asset)).status_code == 200


def test_vendored_libraries_ship_with_their_licences_as_package_data() -> None:
    vendor = STATIC_DIR / "vendor"
    for library in ("dagre", "swagger-ui"):
        assert (vendor / library / "LICENSE.txt").is_file(), library
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "ui/static/**/*" in pyproject["tool"]["setuptools"]["package-data"]["flowrunner"]
