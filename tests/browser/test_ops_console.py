"""The ops console as a person uses it, in a real headless Chromium.

Real data from a simulator scenario (installs, tickets, a paid order, a failed and some
rejected callbacks), then: log in, open the dashboard, a tenant, the inbox; replay the
failed callback and watch a real worker process it. One screenshot per step under
test-artifacts/browser/; the browser console must stay free of errors throughout.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait

from callbacks.models import CallbackEvent
from tests.browser.chromium import missing_favicon
from tests.ops.fixtures import ADMIN_PASSWORD
from tests.ops.fixtures import ADMIN_USERNAME
from tests.ops.scenario import Day
from tests.ops.scenario import logging_worker
from tests.ops.scenario import worker_env
from tests.support import wait_until

WAIT = 15


def figure(driver, label: str):
    """Return the dashboard card (a link) whose label is ``label``."""
    return driver.find_element(
        By.XPATH,
        "//a[contains(@class,'ops-figure')]"
        f"[span[@class='ops-label' and normalize-space()='{label}']]",
    )


def figure_value(driver, label: str) -> str:
    return figure(driver, label).find_element(By.CLASS_NAME, "ops-value").text.strip()


def readonly(driver, field: str) -> str:
    """Return a read-only field's text on an admin change page (choices by their label)."""
    return driver.find_element(By.CSS_SELECTOR, f".field-{field} .readonly").text.strip()


@pytest.mark.slow
def test_an_operator_checks_the_platform_and_replays_a_failed_callback(
    browser, day: Day, superuser, live_platform, tmp_path
):
    driver = browser.driver
    wait = WebDriverWait(driver, WAIT)
    secrets = [a.permanent_code for a in live_platform.sandbox.state.auths.values()]

    # 1. Log in to the admin.
    browser.get("/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    driver.find_element(By.ID, "id_username").send_keys(ADMIN_USERNAME)
    driver.find_element(By.ID, "id_password").send_keys(ADMIN_PASSWORD)
    browser.screenshot("login")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "ops-dashboard-link")))
    assert browser.path == "/admin/"
    browser.screenshot("admin-index")
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 2. The dashboard, from the index: every section, three charts, no console error.
    driver.find_element(By.LINK_TEXT, "Operations dashboard").click()
    wait.until(ec.presence_of_element_located((By.ID, "ops-inbox")))
    assert browser.path == "/admin/ops/dashboard/"
    assert driver.find_element(By.TAG_NAME, "h1").text == "Operations dashboard"
    assert figure_value(driver, "failed (24 h)") == "1"
    assert figure_value(driver, "suites with a stale ticket") == "0"
    assert figure_value(driver, "orders awaiting payment") == "1"
    assert int(figure_value(driver, "rejected (24 h)")) >= sum(day.rejected.values())
    for chart in ("inbox", "rejections", "latency"):
        svg = driver.find_element(By.CSS_SELECTOR, f"#ops-chart-{chart} svg")
        assert svg.is_displayed()
        assert svg.size["width"] > 600, (chart, svg.size)
        assert svg.size["height"] > 150, (chart, svg.size)
    bars = driver.find_elements(By.CSS_SELECTOR, "#ops-chart-inbox svg .bar rect")
    assert bars, "the inbox chart draws no bar"
    suites = driver.find_elements(By.CSS_SELECTOR, "#ops-suites tbody tr")
    assert len(suites) == 2
    browser.screenshot("dashboard")
    # The dashboard itself: no console error at all (it declares its icon).
    assert browser.console_errors() == [], "the dashboard logged console errors"

    # 3. A tenant: from the active count to the authorization's page.
    driver.find_element(
        By.XPATH, "//section[@id='ops-tenants']//tr[th[normalize-space()='active']]//a"
    ).click()
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert "status__exact=active" in browser.path
    rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".field-status")))
    assert readonly(driver, "status").lower() == "active"
    assert day.market_corp in driver.page_source
    for secret in secrets:
        assert secret not in driver.page_source
    browser.screenshot("tenant")
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 4. The inbox: the failed callback, from the dashboard's card.
    browser.get("/admin/ops/dashboard/")
    figure(driver, "failed (24 h)").click()
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert "status__exact=failed" in browser.path
    rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert "change_auth" in rows[0].text
    assert "WeComPermanentError" in rows[0].text
    browser.screenshot("inbox-failed")
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 5. Replay it (select + action) with a real worker running: the fault that made it
    #    fail fired once, so this time it goes through.
    with logging_worker(env=worker_env(live_platform), log_path=tmp_path / "worker.log"):
        rows[0].find_element(By.CSS_SELECTOR, "input.action-select").click()
        Select(driver.find_element(By.NAME, "action")).select_by_value("replay")
        driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
        message = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
        )
        assert message.text == "1 callback(s) queued for replay"
        browser.screenshot("replayed")
        wait_until(
            lambda: CallbackEvent.objects.get(pk=day.failed_event.pk).status == "done",
            timeout=30,
            message="the worker to process the replayed callback",
        )
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 6. The callback's page: done, no error left, its payload's codes masked.
    browser.get(f"/admin/callbacks/callbackevent/{day.failed_event.pk}/change/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".field-status")))
    assert readonly(driver, "status").lower() == "done"
    assert readonly(driver, "last_error") in {"", "-"}
    assert int(readonly(driver, "attempts")) == 2
    browser.screenshot("callback-done")
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 7. Back on the dashboard, nothing is failing any more.
    browser.get("/admin/ops/dashboard/")
    wait.until(ec.presence_of_element_located((By.ID, "ops-inbox")))
    assert figure_value(driver, "failed (24 h)") == "0"
    assert figure_value(driver, "backlog (pending now)") == "0"
    browser.screenshot("dashboard-after-replay")
    assert browser.console_errors() == []
    # Over the whole session, the only console error is the admin's missing favicon.
    assert all(missing_favicon(e) for e in browser.console if e["level"] == "SEVERE")
