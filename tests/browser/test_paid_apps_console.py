"""The dashboard's paid-app panels as an operator uses them, in a real headless Chromium.

Real data from the simulator (a purchase, an unpaid order, a trial ending in 3 days, one
in 15, a tenant over its seat limit), mirrored by the reconciler. Then: log in, read the
panels (figures, chart, trial and seat tables), follow "trials ending within 7 days" to
the tenant and extend its trial with the admin action; WeCom's answer shows on its page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait

from licensing.app_orders.models import TenantEdition
from licensing.app_orders.models import TrialExtension
from licensing.app_orders.reconcile import app_orders_reconcile
from tests.browser.test_ops_console import figure
from tests.browser.test_ops_console import figure_value
from tests.licensing.conftest import install
from tests.ops.fixtures import ADMIN_PASSWORD
from tests.ops.fixtures import ADMIN_USERNAME

WAIT = 15


def paid_app_day(platform) -> dict:
    """Three tenants of the paid suite in the states the panels are for."""
    ctl, suite_id = platform.control, platform.suite.suite_id
    tenants = [install(platform, ctl, corp["corpid"]) for corp in platform.corps]
    paying, ending, fresh = (t.corp.corpid for t in tenants)
    bought = ctl.create_app_order(suite_id, paying, edition_id="ESPRO", user_count=10)
    ctl.app_order(bought["orderid"], "pay")
    ctl.change_edition(suite_id, paying, app_status=6)  # more members than 10 see the app
    in_three_days = int((timezone.now() + timedelta(days=3)).timestamp())
    ctl.change_edition(suite_id, ending, expired_time=in_three_days)
    ctl.create_app_order(suite_id, fresh, user_count=5)  # placed, not paid
    assert platform.sandbox.wait_pushes(10)
    result = app_orders_reconcile()  # every callback above went unprocessed: no worker
    assert result.errors == []
    return {"paying": paying, "ending": ending, "fresh": fresh, "tenants": tenants}


@pytest.mark.slow
def test_an_operator_reads_the_paid_app_panels_and_extends_a_trial(
    browser, superuser, live_platform
):
    day = paid_app_day(live_platform)
    driver = browser.driver
    wait = WebDriverWait(driver, WAIT)

    browser.get("/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    driver.find_element(By.ID, "id_username").send_keys(ADMIN_USERNAME)
    driver.find_element(By.ID, "id_password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "ops-dashboard-link")))

    # 1. The panels: figures, the orders chart, the two tables.
    browser.get("/admin/ops/dashboard/")
    panel = wait.until(ec.presence_of_element_located((By.ID, "ops-paid-apps")))
    driver.execute_script("arguments[0].scrollIntoView();", panel)
    assert figure_value(driver, "app orders awaiting payment") == "1"
    assert figure_value(driver, "trials ending within 7 days") == "1"
    assert figure_value(driver, "trials ending within 30 days") == "2"
    assert figure_value(driver, "editions over their seat limit") == "1"
    svg = driver.find_element(By.CSS_SELECTOR, "#ops-chart-app-orders svg")
    assert svg.is_displayed()
    assert svg.size["width"] > 600, svg.size
    assert driver.find_elements(By.CSS_SELECTOR, "#ops-chart-app-orders svg .bar rect")
    trial_rows = driver.find_elements(By.CSS_SELECTOR, "#ops-trials-ending tbody tr")
    corpids = [row.get_attribute("data-trial-corpid") for row in trial_rows]
    assert corpids == [day["ending"], day["fresh"]]  # soonest first
    [over] = driver.find_elements(By.CSS_SELECTOR, "#ops-over-limit tbody tr")
    assert over.get_attribute("data-over-corpid") == day["paying"]
    assert "专业版" in over.text
    browser.screenshot("paid-app-panels")
    assert browser.console_errors() == [], "the dashboard logged console errors"

    # 2. From the 7-day figure to the tenant, and its trial extended by 10 days.
    figure(driver, "trials ending within 7 days").click()
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert "trial=7" in browser.path
    [row] = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert day["ending"] in row.text
    row.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("prolong_trial")
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    days = wait.until(ec.presence_of_element_located((By.ID, "id_days")))
    browser.screenshot("prolong-form")
    days.send_keys("10")
    driver.find_element(By.CSS_SELECTOR, "input[name=apply]").click()
    message = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
    )
    assert message.text.lower() == "trial extended: 1"  # the admin's CSS capitalises it
    browser.screenshot("trial-extended")
    edition = TenantEdition.objects.get(authorization__corp__corpid=day["ending"])
    assert 12 <= (edition.expired_time - timezone.now()).days <= 13
    assert TrialExtension.objects.get().actor == superuser.get_username()
    assert browser.console_errors(allow_missing_favicon=True) == []

    # 3. Back on the dashboard: nothing ends within 7 days any more.
    browser.get("/admin/ops/dashboard/")
    wait.until(ec.presence_of_element_located((By.ID, "ops-paid-apps")))
    assert figure_value(driver, "trials ending within 7 days") == "0"
    assert figure_value(driver, "trials ending within 30 days") == "2"
    browser.screenshot("dashboard-after-extension")
    assert browser.console_errors() == []
