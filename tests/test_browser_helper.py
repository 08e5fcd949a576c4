"""The browser requirement skips with a how-to locally and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.helpers import browser


def test_missing_browser_skips_with_install_hint(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        browser.require_chromium()


def test_missing_browser_fails_under_ci(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        browser.require_chromium()


def test_browser_on_path_is_used(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: f"/opt/{name}")
    assert browser.require_chromium() == "/opt/chromium"
