"""One real browser: headless Chromium opens the overview served by ``serve`` and the rollback
flow (log in with the token, press a deployment's rollback button, see the result and the new
state), with a screenshot of each."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sorte.config import Settings
from sorte.web import serve
from tests.web.web_env import CHROMEDRIVER, CHROMIUM, TOKEN, deployed_project, require_chromium, with_web

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


class Server:
    """``serve`` in a thread of its own, as ``sorte up`` runs it in its loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port: int | None = None
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="web-test-server", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(self.settings, self.stop, ready=self._listening)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
        finally:
            self.ready.set()

    def _listening(self, port: int) -> None:
        self.port = port
        self.ready.set()

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(30), "the server did not start"
        assert self.port is not None, f"the server failed: {self.error!r}"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop"


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[object]:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1600")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(120)  # a rollback runs a commander before the page answers
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver: object, path: Path) -> None:
    assert driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000, f"{path} is not a real screenshot ({len(data)} bytes)"


def test_overview_and_the_rollback_flow_in_chromium(
    browser: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("SORTE_"):
            monkeypatch.delenv(key)
    settings, baseline, candidate = deployed_project(tmp_path)
    settings = with_web(settings, port=0, token=TOKEN)
    driver = browser
    # While a form's POST is answered the old document is torn down under the polling: a stale
    # node or a "node does not belong to the document" error means "not yet", not a failure.
    wait = WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException, WebDriverException))  # type: ignore[arg-type]
    with Server(settings) as url:
        driver.get(url + "/")  # type: ignore[attr-defined]
        assert driver.find_element(By.ID, "active").text.startswith(f"#{candidate}")  # type: ignore[attr-defined]
        assert driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline.equity")  # type: ignore[attr-defined]
        _screenshot(driver, tmp_path / "overview.png")

        driver.get(url + "/login?next=/deployments")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "token").send_keys(TOKEN)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]
        wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), "Logged in"))
        assert driver.current_url.endswith("/deployments")  # type: ignore[attr-defined]

        driver.find_element(By.ID, f"rollback-{baseline}").click()  # type: ignore[attr-defined]
        wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), "rolled back"))
        row = driver.find_element(By.ID, f"deployment-{candidate}")  # type: ignore[attr-defined]
        assert "rolled_back" in row.text
        assert "active" in driver.find_element(By.ID, f"deployment-{baseline}").text  # type: ignore[attr-defined]
        assert not driver.find_elements(By.ID, f"rollback-{baseline}")  # type: ignore[attr-defined]
        _screenshot(driver, tmp_path / "rolled-back.png")
