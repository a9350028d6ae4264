"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

`make test` installs both packages when missing (scripts/test.sh). Screenshots are kept
under ``test-artifacts/browser/<test>/`` (git-ignored), one PNG per step.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.chromium import CHROMEDRIVER
from tests.browser.chromium import CHROMIUM
from tests.browser.chromium import FLAGS
from tests.browser.chromium import Browser
from tests.ops.fixtures import day  # noqa: F401
from tests.ops.fixtures import ops_gauges  # noqa: F401
from tests.ops.fixtures import plain_static  # noqa: F401
from tests.ops.fixtures import superuser  # noqa: F401
from tests.support import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture
def browser(live_server, request):
    request.getfixturevalue("plain_static")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="wecom-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    driver.set_page_load_timeout(30)
    artifacts = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    try:
        yield Browser(driver, live_server.url, artifacts)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
