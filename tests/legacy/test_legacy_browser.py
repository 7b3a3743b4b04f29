"""The legacy example's chat page in headless Chromium, through Selenium and chromedriver.

Locally these tests skip when Chromium, chromedriver or Selenium is missing;
in CI (``CI=true``) that is a failure.  Nothing is downloaded: the browser
and the driver are Debian's (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import ServerProcess

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=900,640",
]

WAIT = 10.0

# [kind, user or None, text] for each line of the page's log.
READ_LOG = """
return Array.from(document.querySelectorAll("#log li")).map(function (li) {
  var user = li.querySelector(".user");
  return [li.className, user ? user.textContent : null, li.querySelector(".text").textContent];
});
"""


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and os.path.exists(f"/usr/bin/{name}"):
        found = f"/usr/bin/{name}"
    return found


def _browser_or_skip() -> tuple[str, str]:
    chromium, chromedriver = _find("chromium"), _find("chromedriver")
    missing = []
    if chromium is None:
        missing.append("chromium")
    if chromedriver is None:
        missing.append("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = (
            f"browser tests need {', '.join(missing)} (apt-get install chromium "
            "chromium-driver; pip install selenium)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required in CI", pytrace=False)
        pytest.skip(reason)
    assert chromium is not None and chromedriver is not None
    return chromium, chromedriver


class Page:
    """One browser (its own profile, so its own session) looking at the chat."""

    def __init__(self, driver: Any, server: ServerProcess) -> None:
        self.driver = driver
        self.server = server

    def wait_until(self, condition: Callable[[], Any], message: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(
            lambda _driver: condition(), message
        )

    def enter(self, name: str, path: str) -> None:
        """Open the room, choosing ``name`` first if the session has none yet."""
        from selenium.webdriver.common.by import By

        self.driver.get(self.server.url(path, "http"))
        if self.driver.current_url.startswith(self.server.url("/name/", "http")):
            field = self.driver.find_element(By.ID, "id_name")
            field.clear()
            field.send_keys(name)
            self.driver.find_element(By.CSS_SELECTOR, "#name-form button").click()
        self.wait_until(lambda: self.status() == "connected", f"{name}: page did not connect")
        assert self.driver.find_element(By.ID, "me").text == name
        self.wait_until(lambda: ["system", None] in [line[:2] for line in self.lines()], "join")

    def status(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.ID, "status").text)

    def lines(self) -> list[list[Any]]:
        return list(self.driver.execute_script(READ_LOG))

    def messages(self) -> list[tuple[str, str]]:
        return [(user, text) for kind, user, text in self.lines() if kind.startswith("message")]

    def notices(self) -> list[str]:
        return [text for kind, _, text in self.lines() if kind == "system"]

    def say(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, "message").send_keys(text)
        self.driver.find_element(By.CSS_SELECTOR, "#send-form button").click()

    def sees(self, *expected: tuple[str, str]) -> None:
        self.wait_until(
            lambda: all(item in self.messages() for item in expected),
            f"expected {expected}, the page shows {self.messages()}",
        )

    def sees_notice(self, text: str) -> None:
        self.wait_until(lambda: text in self.notices(), f"no {text!r} in {self.notices()}")


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or a skip (a failure in CI) saying what is missing."""
    return _browser_or_skip()


@pytest.fixture(scope="module")
def browser(
    browser_paths: tuple[str, str],
    legacy_server: ServerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], Page]]:
    """Start browsers on demand; each has its own profile directory, cookies and session."""
    chromium, chromedriver = browser_paths
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def start() -> Page:
        profile = tmp_path_factory.mktemp("chromium-profile")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        service = Service(executable_path=chromedriver, log_output=str(profile / "driver.log"))
        driver = webdriver.Chrome(options=options, service=service)
        drivers.append(driver)
        return Page(driver, legacy_server)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
        yield start
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="module")
def ann_and_ben(browser: Callable[[], Page]) -> tuple[Page, Page]:
    return browser(), browser()


def new_room() -> str:
    return f"/chat/browser-{uuid.uuid4().hex[:8]}/"


def test_two_browsers_chat(
    ann_and_ben: tuple[Page, Page], legacy_server: ServerProcess, tmp_path: Path
) -> None:
    ann, ben = ann_and_ben
    room = new_room()
    ann.enter("ann", room)
    ben.enter("ben", room)
    ann.sees_notice("ben joined (2 here)")

    ann.say("Hello from Ann")
    ben.sees(("ann", "Hello from Ann"))
    ben.say("Hi Ann, Ben here")
    conversation = [("ann", "Hello from Ann"), ("ben", "Hi Ann, Ben here")]
    ann.sees(*conversation)
    ben.sees(*conversation)
    assert ann.messages() == conversation  # each message exactly once, in order
    assert ben.messages() == conversation
    assert [kind for kind, *_ in ann.lines()][-2:] == ["message mine", "message"]

    screenshot = Path(os.environ.get("LEGACY_CHAT_SCREENSHOT", tmp_path / "chat.png"))
    assert ann.driver.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_reload_reconnects_and_chats_again(ann_and_ben: tuple[Page, Page]) -> None:
    ann, ben = ann_and_ben
    room = new_room()
    ann.enter("ann", room)
    ben.enter("ben", room)
    ann.sees_notice("ben joined (2 here)")

    ben.driver.refresh()
    ben.wait_until(lambda: ben.status() == "connected", "ben did not reconnect")
    ann.sees_notice("ben left (1 here)")
    ann.wait_until(lambda: ann.notices().count("ben joined (2 here)") == 2, "ben did not rejoin")
    assert ben.messages() == []  # a fresh page

    ben.say("back after a reload")
    ann.sees(("ben", "back after a reload"))
    ann.say("welcome back")
    ben.sees(("ben", "back after a reload"), ("ann", "welcome back"))


def test_closing_a_tab_leaves_the_others_working(
    ann_and_ben: tuple[Page, Page], legacy_server: ServerProcess
) -> None:
    ann, ben = ann_and_ben
    room = new_room()
    ann.enter("ann", room)
    ben.enter("ben", room)
    first_tab = ann.driver.current_window_handle
    log_before = len(legacy_server.log())

    ann.driver.switch_to.new_window("tab")  # same browser, same session
    ann.enter("ann", room)
    ben.sees_notice("ann joined (3 here)")
    ann.say("from the second tab")
    ben.sees(("ann", "from the second tab"))
    ann.driver.close()
    ann.driver.switch_to.window(first_tab)
    ben.sees_notice("ann left (2 here)")

    assert ann.status() == "connected"
    ann.say("the first tab still works")
    ben.sees(("ann", "the first tab still works"))
    ann.sees(("ann", "from the second tab"), ("ann", "the first tab still works"))
    assert legacy_server.http_get("/health/") == (200, b"ok is_websocket=False")
    new_lines = legacy_server.log()[log_before:]
    assert "Traceback" not in new_lines and "ERROR" not in new_lines, new_lines


def online(page: Page) -> str:
    from selenium.webdriver.common.by import By

    return str(page.driver.find_element(By.ID, "online").text)


def test_logging_out_in_one_tab_closes_that_sessions_sockets_in_the_others(
    browser: Callable[[], Page],
) -> None:
    """Ann logs out in a second tab: her first tab is disconnected, Ben is not."""
    from selenium.webdriver.common.by import By

    ann, ben = browser(), browser()  # fresh profiles: this test logs Ann out
    room = new_room()
    ann.enter("ann", room)
    ben.enter("ben", room)
    ann.sees_notice("ben joined (2 here)")
    ben.wait_until(lambda: online(ben) == "2", "ben's page does not count 2")
    first_tab = ann.driver.current_window_handle

    ann.driver.switch_to.new_window("tab")  # same browser, same session
    ann.driver.get(ann.server.url(room, "http"))
    ann.wait_until(lambda: ann.status() == "connected", "the second tab did not connect")
    ben.wait_until(lambda: online(ben) == "3", "ben's page does not count 3")
    ann.driver.find_element(By.CSS_SELECTOR, "#logout-form button").click()
    ann.wait_until(lambda: "/name/" in ann.driver.current_url, "logout did not redirect")

    ann.driver.switch_to.window(first_tab)
    ann.wait_until(lambda: ann.status() == "logged out", f"first tab says {ann.status()!r}")
    ben.wait_until(lambda: online(ben) == "1", f"ben's page counts {online(ben)}")
    assert ben.status() == "connected"
    ben.say("still here")
    ben.sees(("ben", "still here"))
