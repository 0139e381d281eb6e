"""Shared by every browser test: Debian's Chromium, screenshots, axe-core and signing in."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# between page actions are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "screenshots"
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
# `playwright install` cannot download browsers here: Debian's Chromium, without its network chatter.
LAUNCH_ARGS = {
    "executable_path": CHROMIUM,
    "args": [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ],
}
PASSWORD = "correct horse battery staple"  # the factories' password


def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_axe_violations(page: Page) -> list[dict]:
    # Evaluated rather than added as a <script>: the Content-Security-Policy refuses inline scripts.
    page.evaluate(AXE_SCRIPT.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"rule": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Home: each role's inbox ("Your inbox"), or a viewer's overview.
    expect(page.get_by_role("heading", level=1, name=re.compile("^(Your inbox|Overview)$"))).to_be_visible()
