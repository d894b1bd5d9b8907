"""The dashboard in a real headless browser (Debian's chromium), used as a person would.

One browser and one server per module and backend. Skipped on a machine
without chromium and chromedriver, but a failure in CI (``CI=true``), where
.ci/run installs them. With ``$DURABLE_UI_SCREENSHOTS`` set to a folder, the
screenshots of docs/ui.md are written there.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durable
from tests.ui.conftest import EXTRA, checkout, running

pytest.importorskip("starlette", reason=EXTRA)

import durable.ui

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20.0


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} not found: apt-get install -y chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed: pip install -e ".[dev]"'
    return None


def _need_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests must run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(module_store: str) -> Iterator[str]:
    """The dashboard on a free loopback port, served by uvicorn in a thread."""
    import uvicorn

    _need_browser()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(durable.ui.app(module_store), log_level="warning", lifespan="on")
    serving = uvicorn.Server(config)
    thread = threading.Thread(target=serving.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _until(lambda: serving.started, "the server to start")
    yield f"http://127.0.0.1:{port}"
    serving.should_exit = True
    thread.join(30)
    sock.close()


def _until(predicate: Any, what: str) -> None:
    from tests.conftest import wait_for

    wait_for(predicate, what, timeout=WAIT)


def wait(browser: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT).until(condition)


def text_of(browser: Any, css: str) -> str:
    """The text of the element ``css`` selects (read in one go: polling may swap it)."""
    found = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
    )
    return str(found).strip()


def shot(browser: Any, name: str, tmp_path: Path) -> None:
    """A screenshot, into $DURABLE_UI_SCREENSHOTS (docs/images) when set."""
    folder = Path(os.environ.get("DURABLE_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / name))


def confirm_and_submit(browser: Any, button: Any) -> None:
    """Click a button whose form asks for a confirmation, and accept it."""
    from selenium.webdriver.support import expected_conditions as ec

    button.click()
    wait(browser, ec.alert_is_present()).accept()


def rows(browser: Any) -> list[str]:
    """The ids of the listed workflows (read in one go: polling may swap the table)."""
    found = browser.execute_script(
        "return Array.from(document.querySelectorAll('#workflows tbody tr[data-id]'))"
        ".map(r => r.getAttribute('data-id'));"
    )
    return [str(i) for i in found]


def test_the_list_filters_and_updates_itself(
    browser: Any, server: str, module_store: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait(browser, lambda b: "order-1" in rows(b))
    assert {"order-1", "order-2", "batch-1"} <= set(rows(browser))
    assert text_of(browser, "#count-error") == "1"
    if module_store.startswith("sqlite"):
        shot(browser, "ui-list.png", tmp_path)
    browser.execute_script("window.notReloaded = true;")
    with durable.Runtime(module_store):
        checkout.run_sync("lamp", 30, workflow_id="order-live")
    wait(browser, lambda b: "order-live" in rows(b))  # polled in, not reloaded
    assert browser.execute_script("return window.notReloaded === true;")
    browser.find_element(By.CSS_SELECTOR, "input[value=error]").click()
    browser.find_element(By.ID, "apply").click()
    wait(browser, lambda b: rows(b) == ["order-2"])
    browser.get(server + "/")
    field = browser.find_element(By.ID, "f-id-prefix")
    field.send_keys("order-1")
    browser.find_element(By.ID, "apply").click()
    wait(browser, lambda b: rows(b) == ["order-1"])


def test_a_workflow_with_its_timeline_and_no_unsigned_preview(
    browser: Any, server: str, module_store: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/?status=error")
    wait(browser, lambda b: rows(b) == ["order-2"])
    browser.find_element(By.LINK_TEXT, "order-2").click()
    wait(browser, lambda b: b.find_elements(By.ID, "gantt"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#gantt rect.bar")
    assert [b.get_attribute("data-step") for b in bars] == [
        "reserve",
        "reserved",
        "stage",
        "charge",
        "charge",
    ]
    assert "b-retried" in str(bars[3].get_attribute("class"))
    assert "card declined for 900" in text_of(browser, "#wf-error")
    assert "value hidden: no secret key is configured" in text_of(browser, "#outcome")
    if module_store.startswith("sqlite"):
        shot(browser, "ui-workflow.png", tmp_path)
    browser.find_element(By.CSS_SELECTOR, "details.value summary").click()  # reserve's value
    wait(browser, lambda b: "value hidden" in text_of(b, "details.value[open]"))


def test_cancel_a_running_workflow_and_see_it_change(
    browser: Any, server: str, module_store: str
) -> None:
    from selenium.webdriver.common.by import By

    with running(module_store, "slow-ui"):
        browser.get(server + "/workflow?id=slow-ui")
        assert text_of(browser, "#wf-status") == "running"
        confirm_and_submit(browser, browser.find_element(By.ID, "do-cancel"))
        wait(browser, lambda b: "cancelled slow-ui" in text_of(b, "#notice"))
        assert text_of(browser, "#wf-status") == "cancelled"


def test_fork_from_a_snapshot(browser: Any, server: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/workflow?id=order-1")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-snapshot="reserved"]')
    new_id = row.find_element(By.CSS_SELECTOR, "input.fork-id")
    new_id.clear()
    new_id.send_keys("order-1-fork")
    confirm_and_submit(browser, row.find_element(By.ID, "do-fork"))
    wait(browser, lambda b: text_of(b, "#wf-id") == "order-1-fork")
    assert "forked order-1 at snapshot 'reserved' into order-1-fork" in text_of(browser, "#notice")
    assert "order-1" in text_of(browser, "#card")


def test_screenshots_are_in_the_docs() -> None:
    images = Path(__file__).parents[2] / "docs" / "images"
    for name in ("ui-list.png", "ui-workflow.png"):
        assert (images / name).stat().st_size > 10_000, name
