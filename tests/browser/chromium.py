"""Selenium helpers: the Chromium flags, a Browser wrapper with console log and screenshots."""

from __future__ import annotations

import base64
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1400,1000",
    "--lang=en-US",
)


def missing_favicon(entry: dict) -> bool:
    message = entry.get("message", "")
    return "/favicon.ico - Failed to load resource" in message and "404" in message


class Browser:
    """The WebDriver plus the console log and a numbered screenshot per step."""

    def __init__(self, driver, base_url: str, artifacts: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.artifacts = artifacts
        self.console: list[dict] = []
        self._step = 0

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url = self.driver.current_url
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url

    def console_errors(self, *, allow_missing_favicon: bool = False) -> list[dict]:
        """Return the console errors logged since the last call (and keep them all).

        The admin's own pages declare no icon, so Chromium asks for /favicon.ico and
        logs the 404; ``allow_missing_favicon`` ignores exactly that line.
        """
        entries = self.driver.get_log("browser")
        self.console.extend(entries)
        return [
            entry
            for entry in entries
            if entry.get("level") == "SEVERE"
            and not (allow_missing_favicon and missing_favicon(entry))
        ]

    def screenshot(self, name: str) -> Path:
        """Save the whole page (beyond the viewport) as ``NN-name.png``; return its path."""
        self._step += 1
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path = self.artifacts / f"{self._step:02d}-{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
