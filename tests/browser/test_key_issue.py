"""A security admin issues an API key in a real Chromium: shown once, stored nowhere.

The user is not a superuser: only the "security admin" group (ops/roles.py) lets them
issue keys. They log in through the real login form (django-axes in the path), run the
admin action, and see the key on the page that created it. Then neither the browser's
cookies, nor any session row (decoded), nor any line the server logged holds it, and
loading the page again, or going back and forward, does not show it.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import call_command
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait

from api.models import ApiKey
from ops import roles
from tests.api.conftest import make_caller

WAIT = 15
KEY_RE = re.compile(r"wcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
USERNAME = "security-owner"
PASSWORD = "a-long-enough-passphrase-for-sec"


@pytest.mark.slow
def test_a_security_admin_issues_a_key_that_is_shown_once(
    browser, transactional_db, django_user_model, capfd, caplog
):
    call_command("sync_roles", verbosity=0)
    user = django_user_model.objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=roles.SECURITY_ADMIN))
    assert not user.is_superuser
    caller = make_caller("billing")
    driver = browser.driver
    wait = WebDriverWait(driver, WAIT)
    # From here on: every log record of this process (the live server is a thread of it),
    # at every level, and anything written to its stdout/stderr.
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()

    # 1. Log in through the form.
    browser.get("/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    driver.find_element(By.ID, "id_username").send_keys(USERNAME)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "user-tools")))
    browser.screenshot("logged-in")

    # 2. API clients → select "billing" → "Issue a new key".
    browser.get("/admin/api/apiclient/")
    wait.until(ec.presence_of_element_located((By.ID, "changelist")))
    driver.find_element(
        By.CSS_SELECTOR, f"input[name=_selected_action][value='{caller.client.pk}']"
    ).click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("issue_key")
    browser.screenshot("action-chosen")
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "code.api-key")))
    browser.screenshot("key-shown")

    # 3. The key is on the page, once, and it is a new, working key for "billing".
    shown = driver.find_elements(By.CSS_SELECTOR, "code.api-key")
    assert len(shown) == 1
    key = shown[0].text.strip()
    assert KEY_RE.fullmatch(key)
    assert key != caller.key
    assert driver.page_source.count(key) == 1
    assert ApiKey.objects.filter(client=caller.client).count() == 2
    assert "Copy each key now" in driver.page_source

    # 4. Stored nowhere: cookies, session rows (raw and decoded), the server's log lines.
    cookies = driver.get_cookies()
    assert {c["name"] for c in cookies} >= {"sessionid", "csrftoken"}
    for cookie in cookies:
        assert key not in cookie["value"], cookie["name"]
        assert key[-20:] not in cookie["value"], cookie["name"]
    sessions = list(Session.objects.all())
    assert sessions  # the login made one
    for session in sessions:
        assert key not in session.session_data
        assert key not in str(session.get_decoded())
    written = capfd.readouterr()
    # Leave out the test's own WebDriver client (selenium, urllib3): it logs the page
    # text it reads back from Chromium at DEBUG, which is the browser side, not the server.
    server = [r for r in caplog.records if not r.name.startswith(("selenium", "urllib3"))]
    records = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in server]
    logged = "\n".join([written.out, written.err, *records])
    # The capture does see the server's lines: axes logs the login it watched.
    assert any("AXES" in line and USERNAME in line for line in records)
    assert key not in logged
    assert key[-20:] not in logged

    # 5. Going back and forward again: the key page's history entry is not restored from
    #    any cache (no-store; Chromium would have to re-send the form, and does not).
    driver.back()
    wait.until(ec.presence_of_element_located((By.ID, "changelist")))
    driver.forward()
    browser.screenshot("forward-to-the-key-page")
    assert key not in driver.page_source
    assert not KEY_RE.search(driver.page_source)
    # Loading the page again shows the list, without the key.
    browser.get("/admin/api/apiclient/")
    wait.until(ec.presence_of_element_located((By.ID, "changelist")))
    browser.screenshot("reloaded")
    assert key not in driver.page_source
    assert not KEY_RE.search(driver.page_source)
    assert ApiKey.objects.filter(client=caller.client).count() == 2  # nothing re-issued
