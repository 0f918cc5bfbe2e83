"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real ``flowrunner serve``.

Every wait is on the page's state (an element, an attribute), bounded only by HANG_GUARD
against a hang. Screenshots land in ``build/test-artifacts/dashboard/`` (or
``$FLOWRUNNER_TEST_ARTIFACTS/dashboard``) for a person to look at.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser as Chromium
from playwright.async_api import Locator, Page, Route, ViewportSize, async_playwright, expect

from tests.conftest import HANG_GUARD
from tests.e2e.dashboard_flows import BRANCHY, FAILING, QUICK, SLOW, WARNED
from tests.e2e.server import ADMIN, Server, create_flow, start_run
from tests.http_server import running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    # One Chromium for the module (launching one costs seconds), so the tests share its loop;
    # each test still gets a fresh browser context (its own cookies, storage and page).
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]
ARTIFACTS = (
    Path(os.environ.get("FLOWRUNNER_TEST_ARTIFACTS", Path(__file__).parents[2] / "build"))
    / ("test-artifacts" if "FLOWRUNNER_TEST_ARTIFACTS" not in os.environ else "")
    / "dashboard"
)
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
expect.set_options(timeout=HANG_GUARD * 1000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Webhook endpoints on 127.0.0.1 (the test receiver) must pass the SSRF guard.
    with Server(
        tmp_path_factory.mktemp("dashboard"),
        http_allow_private="true",
        # Their naps keep a node running; durable waits have servers of their own
        # (tests/e2e/test_waiting*.py).
        durable_wait_threshold_seconds=3600,
    ) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        yield http


class Browser:
    """One Chromium with one page; records every request that left 127.0.0.1."""

    def __init__(self, page: Page, server: Server) -> None:
        self.page = page
        self.server = server
        self.offsite: list[str] = []
        self.errors: list[str] = []

    async def open(self, fragment: str = "", heading: str | None = None) -> None:
        """Go to a dashboard page; with ``heading``, wait until that page is the one shown."""
        await self.page.goto(f"{self.server.url}/ui/{fragment}")
        if heading is not None:
            await expect(self.page.locator("main h1")).to_have_text(heading)

    async def login(self, username: str = ADMIN[0], password: str = ADMIN[1]) -> None:
        await self.open()
        await self.page.get_by_label("Username").fill(username)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Log in").click()
        await expect(self.page.get_by_role("button", name="Log out")).to_be_visible()

    def node(self, node_id: str) -> Locator:
        return self.page.locator(f'g.node[data-node="{node_id}"]')

    async def shot(self, name: str, *, full_page: bool = True) -> Path:
        """``<name>.png`` (the whole page) and ``<name>-view.png`` (what the window shows,
        the size docs/dashboard.md uses)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        if full_page:
            await self.page.screenshot(path=str(ARTIFACTS / f"{name}-view.png"))
        return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Chromium]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def browser(server: Server, chromium: Chromium) -> AsyncIterator[Browser]:
    context = await chromium.new_context(viewport=LAPTOP)
    try:
        page = await context.new_page()
        page.set_default_timeout(HANG_GUARD * 1000)
        seen = Browser(page, server)
        local = urlsplit(server.url).netloc

        async def guard(route: Route) -> None:
            # The dashboard must work offline: anything not on our origin is refused.
            if urlsplit(route.request.url).netloc != local:
                seen.offsite.append(route.request.url)
                await route.abort()
            else:
                await route.continue_()

        await page.route("**/*", guard)
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        yield seen
        assert seen.offsite == [], "the page reached outside its origin"
        assert seen.errors == [], "the page threw"
    finally:
        await context.close()


async def test_login_rejects_a_wrong_password_then_logs_in_and_out(browser: Browser) -> None:
    await browser.open()
    page = browser.page
    await page.get_by_label("Username").fill(ADMIN[0])
    await page.get_by_label("Password").fill("wrong-password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("invalid")
    await browser.shot("login-failed")

    await browser.login()
    await expect(page.get_by_role("heading", name="Flows", exact=True)).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('flowrunner.token')")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('flowrunner.token')") is None


async def test_flows_are_searched_by_name_and_filtered_by_tag(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    await create_flow(client, QUICK.replace("Quick", "Zebra invoices"))
    refunds = await create_flow(client, QUICK.replace("Quick", "Zebra refunds"))
    tagged = await client.patch(f"/api/v1/flows/{refunds}", json={"tags": ["finance"]})
    assert tagged.status_code == 200, tagged.text
    await browser.login()
    page = browser.page
    await browser.open("#/flows", "Flows")
    rows = page.locator("main table.list tbody tr")
    search = page.get_by_role("button", name="Search", exact=True)

    await page.get_by_label("Search by name").fill("Zebra")
    await search.click()
    await expect(rows).to_have_count(2)
    await page.get_by_label("Tag", exact=True).fill("finance")
    await search.click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Zebra refunds")
    await expect(rows.first.locator(".tag")).to_have_text("finance")
    await page.get_by_label("Search by name").fill("no such flow")
    await search.click()
    await expect(page.get_by_text("No flow matches.")).to_be_visible()


async def test_a_flow_created_from_yaml_shows_its_graph_with_edges_badges_and_start(
    browser: Browser,
) -> None:
    await browser.login()
    page = browser.page
    await page.get_by_role("link", name="New flow").click()
    # A problem is listed with its line before anything is saved.
    await page.get_by_label("Flow YAML").fill(BRANCHY.replace("notify, false", "nowhere, false"))
    await page.get_by_role("button", name="Validate").click()
    await expect(page.get_by_role("alert").filter(has_text="Not valid")).to_be_visible()
    unknown = page.locator("ul.problems li.error", has_text="unknown node 'nowhere'")
    await expect(unknown.locator("strong")).to_have_text("line 16:18")  # where `nowhere` is
    await page.get_by_label("Flow YAML").fill(BRANCHY)
    await page.get_by_role("button", name="Validate").click()
    await expect(page.get_by_role("status").filter(has_text="Valid.")).to_be_visible()
    await page.get_by_role("button", name="Create flow").click()

    await expect(page.get_by_role("heading", name="Order triage")).to_be_visible()
    await expect(page.locator("g.node")).to_have_count(5)
    await expect(browser.node("check")).to_have_class("node state-idle start")
    labels = await page.locator(".edge-label text").all_text_contents()
    assert sorted(labels) == ["default", "default", "error", "false", "true"]
    await expect(page.locator("path.edge.error")).to_have_count(1)
    await expect(page.locator("g.end")).to_have_count(1)
    await expect(browser.node("check").locator(".node-badge.retry")).to_have_text("↻ 2")
    await expect(browser.node("notify").locator(".node-badge.batch")).to_have_text("batch parallel")

    # Keyboard: a node is a focusable button; Enter shows its details.
    await browser.node("route").focus()
    await page.keyboard.press("Enter")
    details = page.locator(".node-details")
    await expect(details).to_contain_text("condition")
    await expect(details).to_contain_text("true → notify, false → archive")
    await expect(page.locator("pre.yaml")).to_contain_text("Order triage")
    # Highlighted: keys, a script block as one, and the expression.
    await expect(page.locator("pre.yaml .y-key", has_text="metadata")).to_have_count(1)
    await expect(page.locator("pre.yaml .y-block").first).to_contain_text("return { total")
    await expect(page.locator("pre.yaml .y-expr")).to_contain_text("${[1, 2, 3]}")
    await browser.shot("flow-page")


async def test_a_run_started_from_the_form_shows_node_states_live_and_can_be_canceled(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, SLOW)
    await browser.login()
    page = browser.page
    await browser.open(f"#/flows/{flow_id}", "Slow one")
    await page.get_by_label("Input (JSON)").fill('{"name": "Ada"}')
    await page.get_by_role("button", name="Run", exact=True).click()

    # The run view: states arrive over the WebSocket while the run goes on.
    await expect(page.get_by_role("heading", name="Run ")).to_be_visible()
    await expect(browser.node("first")).to_have_attribute("data-state", "done")
    await expect(browser.node("wait")).to_have_attribute("data-state", "running")
    await expect(browser.node("after")).to_have_attribute("data-state", "queued")
    # A node that ended shows how long it took, on the graph and in its details.
    took = re.compile(r"^\d+(\.\d+)? m?s$")
    await expect(browser.node("first").locator(".node-state")).to_have_text(
        re.compile(r"^done · \d+(\.\d+)? m?s$")
    )
    await expect(page.locator("#run-status")).to_have_text("running")
    await expect(page.locator("#event-log")).to_contain_text("node first finished")
    await browser.node("first").click()
    details = page.locator(".node-details")
    await expect(details.get_by_role("heading", name="Input (the run input)")).to_be_visible()
    await expect(details.locator("pre.node-input")).to_contain_text('"name": "Ada"')
    await expect(details.locator("pre.json:not(.node-input)")).to_contain_text('"hello": "Ada"')
    await expect(details.locator("dt:text-is('Duration') + dd")).to_have_text(took)
    await browser.node("wait").click()
    await expect(details.get_by_role("heading", name="Input (output of first)")).to_be_visible()
    await expect(details.locator("pre.node-input")).to_contain_text('"hello": "Ada"')
    await browser.node("first").click()
    await browser.shot("run-live")

    await page.get_by_role("button", name="Cancel run").click()
    await expect(page.locator("#run-status")).to_have_text("canceled")
    await expect(browser.node("wait")).to_have_attribute("data-state", "canceled")
    await expect(browser.node("after")).to_have_attribute("data-state", "skipped")
    await expect(page.get_by_role("button", name="Cancel run")).to_be_disabled()
    run_id = page.url.rsplit("/", 1)[1]
    run = (await client.get(f"/api/v1/executions/{run_id}")).json()
    assert run["status"] == "canceled"
    await browser.shot("run-canceled")


async def test_a_failed_run_highlights_its_node_and_shows_the_error(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, FAILING)
    run_id = await start_run(client, flow_id, {})
    await browser.login()
    page = browser.page
    await browser.open(f"#/runs/{run_id}", f"Run {run_id[-8:]}")

    await expect(page.locator("#run-status")).to_have_text("failed")
    await expect(browser.node("ok")).to_have_attribute("data-state", "done")
    await expect(browser.node("boom")).to_have_attribute("data-state", "failed")
    await expect(browser.node("boom")).to_have_class("node state-failed culprit")
    await expect(browser.node("never")).to_have_attribute("data-state", "skipped")
    await expect(page.locator("#run-error")).to_contain_text("the answer was not 42")

    await page.get_by_role("button", name="Show node boom").click()
    await expect(page.locator(".node-details .error-json")).to_contain_text("the answer was not 42")
    await browser.shot("run-failed")

    await page.get_by_role("button", name="Retry").click()  # a new run of the same version
    await expect(page).not_to_have_url(f"{browser.server.url}/ui/#/runs/{run_id}")
    await expect(page.locator("#run-status")).to_have_text("failed")
    await expect(browser.node("boom")).to_have_attribute("data-state", "failed")
    retried = page.url.rsplit("/", 1)[1]
    assert (await client.get(f"/api/v1/executions/{retried}")).json()["status"] == "failed"


async def test_a_run_of_a_deleted_flow_still_shows_its_events(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, FAILING)
    response = await client.post(f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={})
    run_id = response.json()["id"]
    assert (await client.delete(f"/api/v1/flows/{flow_id}")).status_code == 204
    await browser.login()
    page = browser.page
    await browser.open(f"#/runs/{run_id}", f"Run {run_id[-8:]}")
    await expect(page.get_by_text("The flow's graph is not available")).to_be_visible()
    await expect(page.locator("#event-log")).to_contain_text("node boom failed")
    await expect(page.locator("#run-error")).to_contain_text("the answer was not 42")


async def test_a_finished_run_replays_from_storage_with_its_output(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, BRANCHY)
    response = await client.post(
        f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={"input": {"total": 150}}
    )
    assert response.json()["status"] == "completed", response.text
    run_id = response.json()["id"]
    await browser.login()
    page = browser.page
    await browser.open(f"#/runs/{run_id}", f"Run {run_id[-8:]}")

    await expect(page.locator("#run-status")).to_have_text("completed")
    for done in ("check", "route", "notify"):
        await expect(browser.node(done)).to_have_attribute("data-state", "done")
    for skipped in ("archive", "alert"):
        await expect(browser.node(skipped)).to_have_attribute("data-state", "skipped")
    await expect(page.locator("#run-output")).to_contain_text("30")
    await browser.shot("run-completed")

    await page.set_viewport_size(PHONE)
    await browser.shot("run-completed-phone")


async def test_a_waiting_run_says_what_it_waits_for_and_goes_on_when_signaled(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow = """metadata: {name: Dashboard wait}
nodes:
  approve: {type: wait_for, params: {name: decision}, next: {default: done}}
  done: {type: set, params: {values: {ok: true}}}
"""
    run_id = await start_run(client, await create_flow(client, flow), {})
    await browser.login()
    page = browser.page
    await browser.open(f"#/runs/{run_id}", f"Run {run_id[-8:]}")
    await expect(page.locator("#run-status")).to_have_text("waiting")
    await expect(page.get_by_role("status").filter(has_text="Waiting at approve")).to_contain_text(
        'signal "decision"'
    )
    sent = await client.post(f"/api/v1/executions/{run_id}/signals/decision", json={"n": 1})
    assert sent.status_code == 202, sent.text
    await expect(page.locator("#run-status")).to_have_text("completed")
    await expect(browser.node("approve")).to_have_attribute("data-state", "done")


async def test_versions_show_a_diff_and_an_old_one_can_be_restored(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, FAILING)
    fixed = FAILING.replace('throw new Error("the answer was not 42");', "return 42;")
    updated = await client.put(
        f"/api/v1/flows/{flow_id}", content=fixed, headers={"content-type": "application/yaml"}
    )
    assert updated.status_code == 200, updated.text
    await browser.login()
    page = browser.page
    await browser.open(f"#/flows/{flow_id}", "Fails at boom")

    # Side by side (the default): the removed line on the left, its replacement beside it.
    await page.get_by_role("button", name="Show diff").click()
    split = page.get_by_label("Differences between v1 and v2")
    changed = split.locator("tr", has=page.locator("td.del"))
    await expect(changed.locator("td.del")).to_contain_text("the answer was not 42")
    await expect(changed.locator("td.add")).to_contain_text("return 42;")
    await split.scroll_into_view_if_needed()
    await browser.shot("flow-diff-split")
    await page.get_by_label("as").select_option("unified")
    await page.get_by_role("button", name="Show diff").click()
    diff = page.get_by_label("Differences", exact=True)
    await expect(diff.locator(".del")).to_contain_text("the answer was not 42")
    await expect(diff.locator(".add")).to_contain_text("return 42;")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Restore version 1").click()
    await expect(page.get_by_text("version 3 ·")).to_be_visible()
    flow = (await client.get(f"/api/v1/flows/{flow_id}")).json()
    assert flow["version"] == 3
    assert "the answer was not 42" in flow["content"]
    await browser.shot("flow-versions")

    # The run form runs the version chosen, not only the current one (v3 fails, v2 does not).
    await page.get_by_label("Version", exact=True).select_option("2")
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#run-status")).to_have_text("completed")
    run = (await client.get(f"/api/v1/executions/{page.url.rsplit('/', 1)[1]}")).json()
    assert (run["flow_version"], run["status"]) == (2, "completed")


async def test_executions_filter_by_status_and_open_a_run(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, FAILING)
    response = await client.post(f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={})
    assert response.json()["status"] == "failed", response.text
    failed = response.json()["id"]
    await browser.login()
    page = browser.page
    await browser.open("#/executions", "Executions")
    await page.get_by_label("Status", exact=True).select_option("failed")
    await expect(page.locator("[data-query*='status=failed']")).to_have_count(1)
    rows = page.locator("#executions tbody tr")
    await expect(rows.first).to_be_visible()
    for status in await rows.locator(".badge").all_text_contents():
        assert status == "failed"
    await browser.shot("executions")
    await page.get_by_role("link", name=failed[-8:]).click()
    await expect(page.locator("#run-status")).to_have_text("failed")
    await expect(browser.node("boom")).to_have_attribute("data-state", "failed")


async def test_executions_filter_by_creation_time_from_the_form_and_a_link(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, QUICK)
    for n in range(2):
        await start_run(client, flow_id, {"n": n})
    await browser.login()
    page = browser.page
    rows = page.locator("#executions tbody tr")
    none = page.get_by_text("No run matches.")
    # Noon in the browser's zone is the same date in UTC, whatever the zone.
    await browser.open(f"#/executions?flow_id={flow_id}&created_before=2000-06-01T12:00:00Z")
    await expect(page.get_by_label("Created before")).to_have_value(re.compile("^2000-06-01T"))
    await expect(none).to_be_visible()

    await browser.open(f"#/executions?flow_id={flow_id}", "Executions")
    await expect(rows).to_have_count(2)
    await page.get_by_label("Created after").fill("2999-06-01T12:00")
    await expect(page.locator("[data-query*='created_after=2999-06-01T']")).to_be_attached()
    await expect(none).to_be_visible()
    await page.get_by_label("Created after").fill("2000-06-01T12:00")
    await expect(rows).to_have_count(2)
    await page.get_by_label("Created before").fill("2999-06-01T12:00")
    await expect(page.locator("[data-query*='created_before=2999-06-01T']")).to_be_attached()
    await expect(rows).to_have_count(2)


async def test_executions_page_through_with_next_and_previous(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, QUICK)
    for n in range(21):  # one more than a page
        await start_run(client, flow_id, {"n": n})
    await browser.login()
    page = browser.page
    await browser.open(f"#/executions?flow_id={flow_id}", "Executions")
    rows = page.locator("#executions tbody tr")
    await expect(rows).to_have_count(20)
    await page.get_by_role("button", name="Next →").click()
    await expect(rows).to_have_count(1)
    await expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    await page.get_by_role("button", name="← Previous").click()
    await expect(rows).to_have_count(20)
    await expect(page.get_by_role("button", name="← Previous")).to_be_disabled()


async def test_a_flows_warnings_are_shown_on_their_lines(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, WARNED)
    await browser.login()
    page = browser.page
    await browser.open(f"#/flows/{flow_id}", "Has a warning")
    await expect(page.locator(".y-problem")).to_have_count(1)
    await expect(page.locator(".y-problem .y-note")).to_contain_text("unreachable")


async def test_secrets_are_set_listed_without_values_and_deleted(browser: Browser) -> None:
    await browser.login()
    page = browser.page
    await browser.open("#/secrets", "Secrets")
    await page.get_by_label("Name", exact=True).fill("SHOP_TOKEN")
    await page.get_by_label("Value", exact=True).fill("s3cr3t-value-xyz")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#secrets")).to_contain_text("SHOP_TOKEN")
    row = page.locator("#secrets tbody tr", has_text="SHOP_TOKEN")
    for column in (1, 2):  # created, updated: shown as times
        await expect(row.locator("td").nth(column)).to_have_text(re.compile(r"\b20\d\d\b"))
    assert "s3cr3t-value-xyz" not in await page.content()
    await browser.shot("secrets")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete secret SHOP_TOKEN").click()
    await expect(page.get_by_text("No secrets yet.")).to_be_visible()


async def test_tokens_are_created_shown_once_and_revoked(browser: Browser) -> None:
    await browser.login()
    page = browser.page
    await browser.open("#/tokens", "API tokens")
    await page.get_by_label("Name", exact=True).fill("ci")
    await page.get_by_role("button", name="Create").click()
    shown = await page.get_by_label("The new token").input_value()
    assert len(shown) > 20
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke token ci").click()
    await expect(page.locator("#tokens tr.revoked")).to_contain_text("ci")
    await browser.open("#/flows", "Flows")
    await browser.open("#/tokens", "API tokens")  # once left, the page never shows the token again
    await expect(page.locator("#tokens")).to_contain_text("ci")
    assert shown not in await page.content()


async def test_swagger_ui_at_docs_renders_from_local_assets(browser: Browser) -> None:
    page = browser.page
    await page.goto(f"{browser.server.url}/docs")
    await expect(page.locator(".swagger-ui .title")).to_contain_text("Flowrunner")
    await expect(page.get_by_text("/api/v1/flows/{flow_id}/graph").first).to_be_visible()
    await browser.shot("swagger-docs", full_page=False)


async def test_webhook_endpoints_are_added_tested_and_their_deliveries_shown(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    with running_server() as receiver:
        await browser.login()
        page = browser.page
        await browser.open("#/webhooks", "Webhooks")
        await page.get_by_label("URL").fill(f"{receiver.url}/echo")
        await page.get_by_label("execution.failed").check()
        await page.get_by_role("button", name="Add", exact=True).click()
        secret = page.get_by_label("The signing secret")
        await expect(secret).to_have_value(re.compile(r"^whsec_"))
        row = page.locator("#webhooks tbody tr", has_text=receiver.url)
        await expect(row).to_contain_text("execution.failed")
        await row.get_by_role("button", name=re.compile("^Send a test event")).click()

        endpoint = (await client.get("/api/v1/webhooks")).json()["items"][0]
        deliveries = f"/api/v1/webhooks/{endpoint['id']}/deliveries"
        # The hang guard bounds this: delivered once the dispatcher has recorded the attempt.
        while (await client.get(deliveries)).json()["items"][0]["status"] != "delivered":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert any(seen["path"] == "/echo" for seen in receiver.seen)

        await row.get_by_role("link", name=f"{receiver.url}/echo").click()
        await expect(page.locator("main h1")).to_have_text(f"Webhook {receiver.url}/echo")
        await expect(page.locator("#deliveries")).to_contain_text("webhook.test")
        await expect(page.locator("#deliveries")).to_contain_text("delivered")
        await page.get_by_role("button", name=re.compile("^Delivery ")).first.click()
        await expect(page.locator("#attempts tbody tr")).to_have_count(1)
        await expect(page.locator("#attempts")).to_contain_text("200")
        await expect(page.locator(".delivery-detail pre.json")).to_contain_text("webhook.test")
        await browser.shot("webhook-deliveries")

        await browser.open("#/webhooks", "Webhooks")
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name=f"Delete {receiver.url}/echo").click()
        await expect(page.locator("#webhooks tbody tr", has_text=receiver.url)).to_have_count(0)
        assert (await client.get("/api/v1/webhooks")).json()["items"] == []


async def test_triggers_of_a_flow_are_listed_and_can_be_disabled(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(
        client,
        QUICK.replace(
            "nodes:",
            "triggers:\n  - webhook: {name: inbox, verify: {scheme: none}}\n"
            '  - schedule: {name: nightly, cron: "0 3 * * *"}\nnodes:',
            1,
        ),
    )
    await browser.login()
    page = browser.page
    await browser.open("#/triggers", "Triggers")
    inbox = page.locator("#triggers tbody tr", has_text="inbox")
    nightly = page.locator("#triggers tbody tr", has_text="nightly")
    await expect(inbox).to_contain_text("/api/v1/hooks/")
    await expect(nightly).to_contain_text("cron 0 3 * * *")
    await expect(nightly).to_contain_text("enabled")
    await nightly.get_by_role("button", name="Disable trigger nightly").click()
    await expect(nightly).to_contain_text("disabled")
    listed = (await client.get("/api/v1/triggers")).json()["items"]
    states = {t["name"]: t["enabled"] for t in listed if t["flow_id"] == flow_id}
    assert states == {"inbox": True, "nightly": False}
    await browser.shot("triggers")
