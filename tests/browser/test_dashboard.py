"""The operator's console in a real browser: a job's detail live, search by prefix, server-side filters and paging,
the one-time sign-in link, charts and workers; and what a non-admin does not see."""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.auth import create_token
from tests.e2e.conftest import ROOT, Proc

pytestmark = pytest.mark.browser

# Records every value the detail's progress text takes, as it happens.
WATCH_PROGRESS = """() => {
  window.progress = [];
  new MutationObserver(() => {
    const value = document.getElementById('detail-progress-text').textContent;
    if (window.progress.at(-1) !== value) window.progress.push(value);
  }).observe(document.getElementById('detail'), {subtree: true, childList: true, characterData: true});
}"""


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Saved with the test's files, and in SCREENSHOT_DIR too when it is set (to look at them after a run)."""
    page.screenshot(path=tmp_path / name, full_page=True)
    if directory := os.environ.get("SCREENSHOT_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(directory) / name, full_page=True)


def signin_link(env: dict[str, str], url: str) -> str:
    command = [sys.executable, "-m", "service", "signin-link", "ops", "--admin", "--base-url", url]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_a_job_s_detail_moves_live_found_by_its_prefix(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.4"  # a report of 100,000 rows: about 8 s, its progress in steps
    url = start_web()
    start_worker()
    alice = {"Authorization": f"Bearer {create_token('alice', env['SECRET_KEY'])}"}
    httpx.post(f"{url}/tasks", json={"type": 0})
    report_id = httpx.post(f"{url}/reports", json={"rows": 100_000}, headers=alice).json()["task_id"]

    page.goto(signin_link(env, url))  # signed in by the one-time link: no token pasted
    expect(page.get_by_role("status")).to_have_text("Signed in as ops (admin)")
    assert "signin" not in page.url  # the code left the address bar
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#workers tr")).to_have_count(1)
    expect(page.locator("#workers tr .status")).to_have_text("passing")

    page.get_by_label("Search by id").fill(report_id[:8])
    page.get_by_role("button", name="Find").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-id")).to_have_text(report_id)
    page.evaluate(WATCH_PROGRESS)
    expect(page.locator("#detail-status")).to_have_text("STARTED", timeout=20_000)
    expect(page.locator("#detail-args")).to_contain_text('"rows": 100000')
    expect(page.locator("#detail-timeline li")).to_have_count(2)  # enqueued, try 1 started
    page.wait_for_function("window.progress.filter((p) => p.includes('/')).length >= 2", timeout=20_000)
    screenshot(page, tmp_path, "dashboard-detail-running.png")
    page.get_by_role("button", name="Abort").first.click()
    expect(page.locator("#detail-status")).to_have_text("REVOKED", timeout=20_000)
    expect(page.locator("#detail-timeline li").last).to_contain_text("Finished: REVOKED")
    seen = page.evaluate("window.progress")
    moving = [p for p in seen if "/" in p]
    assert len(set(moving)) >= 2, seen  # it moved while we watched, pushed by the job's stream
    # The charts have axes, values and the finished task.
    expect(page.locator("#chart-throughput text.tick").first).to_be_visible()
    expect(page.locator("#chart-throughput rect.s-ok").nth(1)).to_be_attached()
    # Each legend says its series is per minute, and that its number is the latest minute's (not a total).
    expect(page.locator("#chart-throughput text.legend").first).to_contain_text("per minute (last: ")
    screenshot(page, tmp_path, "dashboard-detail.png")


def test_filters_and_paging_on_the_server(
    start_web: Callable[[], str], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    url = start_web()  # no worker: the jobs stay queued
    bob = {"Authorization": f"Bearer {create_token('bob', env['SECRET_KEY'])}"}
    with httpx.Client(base_url=url) as http:
        for _ in range(250):
            http.post("/tasks", json={"type": 0})
        reports = [http.post("/reports", json={"rows": 1}, headers=bob).json()["task_id"] for _ in range(3)]

    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    rows = page.locator("#jobs tr")
    expect(rows).to_have_count(20)
    page.get_by_label("Queue", exact=True).select_option("reports")
    expect(rows).to_have_count(3)
    expect(page.locator("#jobs")).to_contain_text(reports[0][:8])
    page.get_by_label("Queue", exact=True).select_option("")
    page.get_by_label("Name").select_option("run_sleep_task")
    expect(rows).to_have_count(20)
    seen: set[str] = set()
    for n in range(13):  # 250 tasks, 20 a page: 12 full pages and one of 10
        expect(page.locator("#page-info")).to_have_text(f"page {n + 1}")
        expect(rows).to_have_count(20 if n < 12 else 10)
        seen |= set(rows.locator("td:nth-child(2)").all_inner_texts())
        if n < 12:
            page.get_by_role("button", name="Older").click()
    assert len(seen) == 250  # every job once, across the pages
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    screenshot(page, tmp_path, "dashboard-paging.png")
    page.get_by_role("button", name="Newest").click()
    expect(page.locator("#page-info")).to_have_text("page 1")
    page.get_by_label("Name").select_option("")
    page.get_by_label("Owner").fill("bob")
    page.get_by_label("Owner").dispatch_event("change")
    expect(rows).to_have_count(3)


def test_a_non_admin_sees_none_of_the_admin_views(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    url = start_web()
    start_worker()
    bob = {"Authorization": f"Bearer {create_token('bob', env['SECRET_KEY'])}"}
    failed = httpx.post(f"{url}/send-notification/bounce@example.com").json()["task_id"]
    theirs = httpx.post(f"{url}/reports", json={"rows": 5}, headers=bob).json()["task_id"]

    page.goto(f"{url}/dashboard#job={theirs}")
    page.get_by_label("Bearer token of an admin").fill(create_token("alice", env["SECRET_KEY"]))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#live")).to_have_text("not connected: 403, this token is not an admin's")
    expect(page.locator("#workers tr")).to_have_count(0)
    expect(page.locator("#failed tr")).to_have_count(0)
    expect(page.locator("#detail-args")).not_to_contain_text("rows")  # bob's arguments never reach alice
    # An anonymous failure opens for anyone, without its traceback.
    page.goto(f"{url}/dashboard#job={failed}")
    expect(page.locator("#detail-status")).to_have_text("FAILURE", timeout=20_000)
    expect(page.locator("#detail-error")).to_contain_text("PermanentFailure")
    expect(page.locator("#detail-error")).not_to_contain_text("Traceback")
    screenshot(page, tmp_path, "dashboard-non-admin.png")


def test_a_retry_says_which_try_and_when_the_next_one_runs(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page
) -> None:
    env |= {"SLEEP_SCALE": "0.01", "RETRY_BACKOFF_SCALE": "60"}  # the first back-off: 30-60 s, time to look at it
    url = start_web()
    start_worker()
    job_id = httpx.post(f"{url}/send-notification/flaky@example.com").json()["task_id"]
    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    page.get_by_label("Status").select_option("RETRY")
    row = page.locator("#jobs tr").filter(has_text=job_id[:8])
    expect(row.locator(".status")).to_have_text(re.compile(r"^RETRY, try 1 of 5, next at \d"), timeout=20_000)
    # Its id is a link to its detail, with an address to copy.
    row.get_by_role("link", name=job_id[:8]).click()
    expect(page.locator("#detail-status")).to_have_text("RETRY")
    assert page.url.endswith(f"#job={job_id}")


# The cells of the jobs table whose content takes more than one line: a range over a cell's content has a box per
# line fragment, and a wrapped date or a wrapped row of buttons puts one a line lower (a button sits a few px below
# text, by its margin: under half a line).
WRAPPED_CELLS = """() => [...document.querySelectorAll('#jobs td')].filter((cell) => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  const tops = [...range.getClientRects()].map((r) => r.top);
  return tops.length > 0 && Math.max(...tops) - Math.min(...tops) > 12;
}).map((cell) => cell.textContent)"""


def test_tables_do_not_wrap_at_1280_and_scroll_in_their_section_at_390(
    start_web: Callable[[], str], env: dict[str, str], page: Page
) -> None:
    url = start_web()  # no worker: the jobs stay queued, each row with its dates and four buttons
    with httpx.Client(base_url=url) as http:
        for task_type in (0, 1, 2, 3, 3):
            http.post("/jobs", json={"name": "run_sleep_task", "args": {"type": task_type}, "delay_s": 600})
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#jobs tr")).to_have_count(5)
    assert page.evaluate(WRAPPED_CELLS) == []  # one line each
    page.set_viewport_size({"width": 390, "height": 844})
    section = page.locator("section", has=page.locator("#jobs"))
    assert section.evaluate("s => s.scrollWidth > s.clientWidth")  # the table scrolls in its section
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")  # the page does not
    assert page.evaluate(WRAPPED_CELLS) == []


def test_signed_out_the_dashboard_says_how_to_sign_in_and_hides_the_token(
    start_web: Callable[[], str], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    url = start_web()
    page.goto(url + "/dashboard")
    help_text = page.locator("#signed-out-help")
    expect(help_text).to_contain_text("python -m service signin-link YOUR_NAME --admin")
    expect(page.get_by_role("heading", name="Workers")).to_be_hidden()  # no empty skeleton
    link = signin_link(env, url)
    page.goto("about:blank")  # the link loads the page anew (only its hash differs from /dashboard)
    page.goto(link)
    expect(page.locator("#notice")).to_contain_text("Signed in as ops (admin)")
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()
    expect(help_text).to_be_hidden()
    assert page.get_by_label("Bearer token of an admin").get_attribute("type") == "password"  # not on screen
    screenshot(page, tmp_path, "dashboard-signed-in.png")
    # The same link again, in a new tab, signed out: it says how to get another.
    again = page.context.new_page()
    again.goto(link)
    expect(again.locator("#alert")).to_contain_text("python -m service signin-link USER --admin")
    expect(again.get_by_role("heading", name="Workers")).to_be_hidden()
