"""What a person sees: the page and the dashboard in a real browser, against real processes."""

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, Request, expect

from service.auth import create_token
from tests.e2e.conftest import Proc

pytestmark = pytest.mark.browser

# Records every text a row's status shows and every value its progress bar takes, as they happen.
WATCH_ROW = """() => {
  window.seen = {statuses: [], progress: []};
  new MutationObserver(() => {
    const row = document.querySelector('#jobs tr');
    if (!row) return;
    const status = row.querySelector('[data-cell=status]').textContent;
    if (window.seen.statuses.at(-1) !== status) window.seen.statuses.push(status);
    const value = row.querySelector('progress').value;
    if (window.seen.progress.at(-1) !== value) window.seen.progress.push(value);
  }).observe(document.getElementById('jobs'), {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_short_task_row_updates_in_place(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.1"  # Short: 1 s
    url = start_web()
    start_worker()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Generic tasks")).to_be_visible()
    print(f"\nfirst load of /: {sum(sizes)} bytes in {len(sizes)} responses")
    page.evaluate(WATCH_ROW)
    page.get_by_role("button", name="Short").click()
    row = page.locator("#jobs tr")
    expect(row.locator(".status")).to_have_text("SUCCESS", timeout=20_000)
    expect(row).to_have_count(1)  # one row, updated in place
    seen = page.evaluate("window.seen.statuses")
    assert seen[0] in ("PENDING", "STARTED") and seen[-1] == "SUCCESS", seen
    expect(row.locator("[data-cell=result]")).to_have_text("true")
    page.screenshot(path=tmp_path / "index.png", full_page=True)


def test_report_progress_and_download(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.1"  # a report: 2 s over 20 steps
    url = start_web()
    start_worker()
    page.goto(url + "/")
    page.get_by_label("Bearer token").fill(create_token("alice", env["SECRET_KEY"]))
    page.get_by_label("Rows").fill("5000")
    page.evaluate(WATCH_ROW)
    page.get_by_role("button", name="Request report").click()
    row = page.locator("#jobs tr")
    expect(row.locator(".status")).to_have_text("SUCCESS", timeout=20_000)
    progress = page.evaluate("window.seen.progress")
    assert any(0 < p < 5000 for p in progress), progress  # the bar moved through the steps
    page.screenshot(path=tmp_path / "report.png", full_page=True)
    with page.expect_download() as download:
        row.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    assert len(list(csv.reader(io.StringIO(saved.read_text())))) == 5001


def test_errors_are_shown_to_the_person(start_web: Callable[[], str], env: dict[str, str], page: Page) -> None:
    env["MAX_ACTIVE_JOBS_PER_USER"] = "1"  # no worker: the first report stays pending
    url = start_web()
    page.goto(url + "/")
    page.get_by_label("Bearer token").fill(create_token("alice", env["SECRET_KEY"]))
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#jobs tr")).to_have_count(1)
    page.get_by_role("button", name="Request report").click()
    expect(page.get_by_role("alert")).to_contain_text("429: at most 1 jobs may be pending or running per user")
    page.get_by_label("Rows").fill("0")
    page.get_by_label("Bearer token").fill("not-a-token")
    page.get_by_label("Rows").fill("10")
    page.get_by_role("button", name="Request report").click()
    expect(page.get_by_role("alert")).to_contain_text("401")


def test_dashboard_retry_and_abort(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.2"  # a notification takes 1 s, a Long task 6 s
    url = start_web()
    start_worker()
    page.goto(url + "/")
    page.get_by_label("E-mail").fill("bounce@example.com")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#jobs tr .status")).to_have_text("FAILURE", timeout=20_000)

    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#workers tr")).to_have_count(1)
    failed = page.locator("#failed tr")
    expect(failed).to_have_count(1)
    failed.get_by_role("button", name="Retry").click()
    expect(page.locator("#failed tr")).to_have_count(2, timeout=20_000)  # the retry failed too: a bounce is final

    page.goto(url + "/")
    page.get_by_role("button", name="Long").click()
    expect(page.locator("#jobs tr").first.locator(".status")).to_have_text("STARTED", timeout=20_000)
    elapsed = page.locator("#jobs tr").first.locator("[data-cell=result]")
    expect(elapsed).to_contain_text("running for")  # a sleep task has no progress of its own: its time ticks
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first)
    page.goto(url + "/dashboard")  # the admin token is kept in the session
    page.get_by_label("Status").select_option("STARTED")
    running = page.locator("#jobs tr")
    expect(running).to_have_count(1, timeout=20_000)
    running.get_by_role("button", name="Abort").click()
    page.get_by_label("Status").select_option("REVOKED")
    expect(page.locator("#jobs tr")).to_have_count(1, timeout=20_000)
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)


def test_kinds_queues_and_a_task_in_ten_seconds(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.01"
    url = start_web()
    start_worker()
    page.goto(url + "/")
    # Every declared kind is offered, from GET /kinds, with its title.
    kinds = page.get_by_label("Kind", exact=True)
    expect(kinds.locator("option")).to_have_count(3)
    expect(kinds).to_contain_text("Notification (send_notification)")
    page.get_by_label("in 10 s").check()
    page.get_by_role("button", name="Short").click()
    row = page.locator("#jobs tr")
    expect(row.locator(".status")).to_have_text("PENDING")
    expect(row.locator("[data-cell=result]")).to_contain_text("scheduled for")
    page.screenshot(path=tmp_path / "scheduled.png", full_page=True)

    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    queues = page.locator("#queues tr")
    expect(queues).to_have_count(2)  # one row per queue
    expect(queues.first).to_contain_text("default")
    expect(queues.first.locator("td").nth(3)).to_have_text("1")  # the task scheduled in 10 s
    expect(page.get_by_label("Name").locator("option")).to_have_count(5)  # any, the three kinds, webhooks
    expect(page.locator("#jobs tr").first).to_contain_text("default")
    page.screenshot(path=tmp_path / "dashboard-queues.png", full_page=True)


def test_dashboard_retry_all_failed_and_delete(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    url = start_web()
    start_worker()
    page.goto(url + "/")
    for _ in range(3):
        page.get_by_label("E-mail").fill("bounce@example.com")
        page.get_by_role("button", name="Send").click()
    expect(page.locator("#jobs tr .status.FAILURE")).to_have_count(3, timeout=20_000)

    page.goto(url + "/dashboard")
    page.get_by_label("Bearer token of an admin").fill(create_token("ops", env["SECRET_KEY"], admin=True))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#failed tr")).to_have_count(3)
    dialogs: list[str] = []

    def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Retry all failed").click()
    expect(page.get_by_role("status")).to_have_text("3 failed jobs queued again")
    expect(page.locator("#failed tr")).to_have_count(6, timeout=20_000)  # the retries bounced too
    assert dialogs == ["Run every failed job again (each once)?"]
    page.get_by_label("Status").select_option("FAILURE")
    rows = page.locator("#jobs tr")
    expect(rows).to_have_count(6, timeout=20_000)
    rows.first.get_by_role("button", name="Delete").click()
    expect(page.locator("#jobs tr")).to_have_count(5, timeout=20_000)
    assert dialogs[-1].startswith("Delete send_notification")
    page.screenshot(path=tmp_path / "dashboard-failed.png", full_page=True)


def test_a_reload_keeps_the_user_s_jobs(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page
) -> None:
    url = start_web()
    start_worker()
    page.goto(url + "/")
    page.get_by_role("button", name="Short").click()  # anonymous: kept by this browser
    page.get_by_label("Bearer token").fill(create_token("alice", env["SECRET_KEY"]))
    page.get_by_role("button", name="Request report").click()  # signed in: listed by GET /jobs
    expect(page.locator("#jobs tr .status.SUCCESS")).to_have_count(2, timeout=20_000)
    page.reload()
    rows = page.locator("#jobs tr")
    expect(rows).to_have_count(2)
    expect(rows.locator(".status.SUCCESS")).to_have_count(2)
    expect(page.locator("#jobs")).to_contain_text("Report")
    expect(page.locator("#jobs")).to_contain_text("Task (Short)")


def test_a_hundred_tasks_at_once_in_one_row(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page, tmp_path: Path
) -> None:
    env["SLEEP_SCALE"] = "0.01"  # Short: 0.1 s
    url = start_web()
    start_worker()
    batches: list[int] = []

    def note(request: Request) -> None:
        if request.url.endswith("/jobs/batch"):
            batches.append(len((request.post_data_json or {})["jobs"]))

    page.on("request", note)
    page.goto(url + "/")
    page.get_by_role("button", name="100 at once").click()
    row = page.locator("#jobs tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-cell=result]")).to_have_text("100 of 100 succeeded", timeout=30_000)
    expect(row.locator(".status")).to_have_text("SUCCESS")
    assert batches == [100]  # one request for the hundred
    assert page.locator("#jobs progress").evaluate("p => [p.value, p.max]") == [100, 100]
    page.screenshot(path=tmp_path / "batch.png", full_page=True)


def test_the_any_kind_form_starts_valid_and_a_422_names_the_field(
    start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str], page: Page
) -> None:
    env["SLEEP_SCALE"] = "0.01"
    url = start_web()
    start_worker()
    page.goto(url + "/")
    kinds = page.get_by_label("Kind", exact=True)
    expect(kinds.locator("option")).to_have_count(3)
    args = page.get_by_label("Arguments (JSON)")
    for name in ("run_sleep_task", "send_notification"):  # the report needs a token: the form says so
        kinds.select_option(name)
        page.get_by_role("button", name="Queue").click()
        expect(page.locator("#jobs tr").first.locator(".status")).to_have_text("SUCCESS", timeout=20_000)
        expect(page.locator("#alert")).not_to_have_class(re.compile("shown"))
    assert "ada@example.com" in args.input_value()  # a required e-mail starts as an address, not ""
    args.fill('{"email": "not an address"}')
    page.get_by_role("button", name="Queue").click()
    expect(page.locator("#alert")).to_contain_text("args.email: value is not a valid email address")
