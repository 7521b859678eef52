"""Cockpit's Podman page (cockpit-podman) against podapi, in headless Chromium.

``cockpit-ws --local-session=cockpit-bridge`` serves the page on 127.0.0.1 with no
login.  As root, the page talks to the system service at the fixed path
``/run/podman/podman.sock``: cockpit-ws and its bridge run in a mount namespace of
their own where a tmpfs hides the host's ``/run`` and the test server's socket
directory is bound at ``/run/podman``, so the host's ``/run/podman`` is never
touched (whatever listens there, or not).  Each step is done with the page's own
controls, checked on the page and through the API, and kept as a screenshot in
the test's output directory (its path is printed).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.images import BuiltImage
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.integration

COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
PAGE = "/cockpit/@localhost/podman/index.html"
IMAGE = "docker.io/library/busybox:latest"
LIBPOD = "/v5.0.0/libpod"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
#: The page's own warning for an event it does not know (a type or action we invent).
UNHANDLED = "Unhandled event type"
#: Errors not of the API's making: typing a short name searches docker.io and quay.io
#: (unreachable offline); the page has no favicon.
KNOWN = ("Failed to search for new images", "favicon.ico")
WAIT = 30


def missing_tools() -> str | None:
    needs = {
        "chromium": shutil.which("chromium"),
        "chromium-driver": shutil.which("chromedriver"),
        "cockpit-ws": os.access(COCKPIT_WS, os.X_OK) or None,
        "cockpit-bridge": shutil.which("cockpit-bridge"),
        "cockpit-podman": Path("/usr/share/cockpit/podman/index.html").exists() or None,
    }
    absent = [name for name, found in needs.items() if not found]
    return f"Debian packages missing: {' '.join(absent)}" if absent else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def podman_server(
    start_server: Callable[..., ServerProcess], tmp_path: Path, busybox: BuiltImage
) -> ServerProcess:
    """podapi with busybox as docker.io/library/busybox:latest, its socket in a directory of
    its own (bound at /run/podman for cockpit)."""
    server = start_server(socket_path=tmp_path / "run-podman" / "podman.sock")
    loaded = server.request("POST", "/v1.44/images/load", body=busybox.docker_archive([IMAGE]))
    assert loaded.status == 200, loaded.body
    return server


@pytest.fixture
def cockpit(podman_server: ServerProcess, tmp_path: Path) -> Iterator[str]:
    """cockpit-ws on a free 127.0.0.1 port; its base URL."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    port = free_port()
    script = (
        'mount -t tmpfs tmpfs /run && mkdir /run/podman && mount --bind "$1" /run/podman && '
        f'exec {COCKPIT_WS} --local-session=cockpit-bridge --address 127.0.0.1 --port "$2"'
    )
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    with open(tmp_path / "cockpit-ws.log", "wb") as log:
        ws = subprocess.Popen(
            [*argv, str(podman_server.sock.parent), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its bridge too: one group to end
        )
    try:
        wait_for(lambda: listening(port) or ws.poll() is not None, WAIT, interval=0.05)
        assert ws.poll() is None, (tmp_path / "cockpit-ws.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(ws.pid, signal.SIGTERM)
        ws.wait(timeout=WAIT)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as e:
        pytest.skip(f"Chromium cannot start here: {e.msg}")
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


class Page:
    """The Podman page, driven with its own controls; a screenshot per step."""

    def __init__(self, driver: Any, shots: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.steps = 0
        self.console: list[dict[str, Any]] = []

    def shot(self, name: str) -> None:
        self.steps += 1
        self.driver.save_screenshot(str(self.shots / f"{self.steps:02d}-{name}.png"))

    def until(self, condition: Callable[[], Any], what: str) -> Any:
        try:
            return WebDriverWait(self.driver, WAIT).until(lambda _: condition())
        except Exception:
            self.shot(f"failed-{what}")
            raise

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def button(self, label: str, within: WebElement | None = None) -> WebElement:
        scope = within or self.driver
        return self.until(
            lambda: next(
                (b for b in scope.find_elements(By.TAG_NAME, "button") if b.text == label), None
            ),
            f"button {label}",
        )

    def row(self, container_id: str) -> WebElement:
        return self.until(
            lambda: self.driver.find_element(
                By.CSS_SELECTOR, f'tr[data-row-id="{container_id}true"]'
            ),
            "row",
        )

    def expand(self, container_id: str) -> WebElement:
        """Open a container's details; the expanded row."""
        self.driver.find_element(By.ID, f"expand-toggle{container_id}true").click()
        return self.row(container_id).find_element(By.XPATH, "following-sibling::tr[1]")

    def tab(self, expanded: WebElement, label: str) -> None:
        tabs = expanded.find_elements(By.CSS_SELECTOR, "button[role=tab]")
        next(t for t in tabs if t.text == label).click()

    def action(self, container_id: str, label: str) -> None:
        """An entry of the container's kebab menu."""
        self.row(container_id).find_element(By.CSS_SELECTOR, "td:last-child button").click()
        self.until(
            lambda: next(
                (
                    item
                    for item in self.driver.find_elements(
                        By.CSS_SELECTOR, ".pf-c-dropdown__menu-item"
                    )
                    if item.text == label
                ),
                None,
            ),
            f"menu {label}",
        ).click()

    def type_in_terminal(self, expanded: WebElement, keys: str) -> None:
        screen = self.until(
            lambda: next(
                (
                    s
                    for s in expanded.find_elements(By.CSS_SELECTOR, ".xterm-screen")
                    if s.is_displayed()
                ),
                None,
            ),
            "terminal",
        )
        ActionChains(self.driver).move_to_element(screen).click().send_keys(keys).perform()

    def field(self, within: WebElement, element_id: str) -> WebElement:
        """A form field, clicked once it can take input (dialogs fade in)."""
        found = self.until(
            lambda: next(
                (f for f in within.find_elements(By.ID, element_id) if f.is_displayed()),
                None,
            ),
            element_id,
        )
        found.click()
        return found

    def drain_console(self) -> list[dict[str, Any]]:
        self.console += self.driver.get_log("browser")
        return self.console


def api_state(server: ServerProcess, name: str) -> str | None:
    reply = server.request("GET", f"{LIBPOD}/containers/{name}/json")
    return None if reply.status == 404 else str(reply.json()["State"]["Status"])


def post(server: ServerProcess, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    reply = server.request("POST", path, data, {"Content-Type": "application/json"})
    assert reply.status < 300, (path, reply.status, reply.body)
    return reply.json() if reply.body else None


def test_cockpit_podman_page(
    podman_server: ServerProcess, cockpit: str, browser: Any, tmp_path: Path
) -> None:
    server = podman_server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\ncockpit screenshots: {shots}")
    page = Page(browser, shots)

    post(server, f"{LIBPOD}/pods/create", {"name": "cockpit-pod"})
    in_pod = {"image": IMAGE, "name": "in-pod", "pod": "cockpit-pod", "command": ["sleep", "1000"]}
    post(server, f"{LIBPOD}/containers/create", in_pod)
    post(server, f"{LIBPOD}/pods/cockpit-pod/start")
    script = "trap 'exit 0' TERM; echo hello-from-web; echo line-two; sleep 1000 & wait"
    web = {"image": "busybox", "name": "web", "command": ["sh", "-c", script]}
    web_id = post(server, f"{LIBPOD}/containers/create", web)["Id"]
    post(server, f"{LIBPOD}/containers/web/start")

    # Lists images, containers and pods.
    browser.get(cockpit + PAGE)
    page.until(lambda: "in-pod" in page.text() and "web" in page.text(), "lists")
    page.button("Show images").click()
    page.until(lambda: "Hide images" in page.text(), "images")
    listing = page.text()
    images = server.get_json(f"{LIBPOD}/images/json")  # busybox and the pod's infra image
    assert f"{len(images)} images total" in listing
    assert IMAGE in listing and "cockpit-pod" in listing
    assert "Running" in page.row(web_id).text
    page.shot("lists")

    # A container's details and logs.
    details = page.expand(web_id)
    inspect = server.get_json(f"{LIBPOD}/containers/web/json")
    ip = inspect["NetworkSettings"]["Networks"][server.default_network]["IPAddress"]
    page.until(lambda: ip in details.text and web_id[:12] in details.text, "details")
    assert IMAGE in details.text
    page.shot("details")
    page.tab(details, "Logs")
    page.until(lambda: "hello-from-web" in details.text and "line-two" in details.text, "logs")
    page.shot("logs")

    # Stop and start with the kebab menu.
    page.action(web_id, "Stop")
    page.until(lambda: api_state(server, "web") == "exited", "stopped (API)")
    page.until(lambda: "Exited" in page.row(web_id).text, "stopped (page)")
    page.shot("stopped")
    page.action(web_id, "Start")
    page.until(lambda: api_state(server, "web") == "running", "started (API)")
    page.until(lambda: "Running" in page.row(web_id).text, "started (page)")
    page.shot("started")

    # Create a container from the image (its row's button), with a terminal (the default).
    image_row = page.until(
        lambda: next(
            (
                r
                for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
                if r.text.startswith(IMAGE)
            ),
            None,
        ),
        "image row",
    )
    page.button("Create container", image_row).click()
    dialog = page.until(lambda: browser.find_element(By.CSS_SELECTOR, "[role=dialog]"), "dialog")
    chosen = page.until(
        lambda: dialog.find_element(By.ID, "create-image-image-select-typeahead"), "image"
    )
    assert chosen.get_attribute("value") == IMAGE
    # Select all, then type over (clear() bypasses React, which puts the old value back;
    # a modifier stays down to the end of one send_keys call).
    typed = {"run-image-dialog-name": "made-by-page", "run-image-dialog-command": "sh"}
    for field_id, text in typed.items():
        field = page.field(dialog, field_id)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)
    assert dialog.find_element(By.ID, "run-image-dialog-tty").is_selected()
    page.shot("create-dialog")
    page.button("Create and run", dialog).click()
    page.until(lambda: api_state(server, "made-by-page") == "running", "created (API)")
    made = server.get_json(f"{LIBPOD}/containers/made-by-page/json")
    assert made["Config"]["Tty"] and not made["Config"]["OpenStdin"]
    assert made["ImageName"] == IMAGE
    made_id = made["Id"]
    page.until(lambda: "Running" in page.row(made_id).text, "created (page)")
    page.shot("created")

    # Its console: attach to the terminal, type, read the answer.
    console = page.expand(made_id)
    page.tab(console, "Console")
    page.until(lambda: "/ #" in console.text, "prompt")
    page.type_in_terminal(console, "echo tty-$((6*7)) > /typed; cat /typed\n")
    page.until(lambda: "tty-42" in console.text, "console output")
    page.shot("console")
    typed = server.request("GET", f"{LIBPOD}/containers/{made_id}/archive?path=/typed")
    assert typed.status == 200, typed.body

    # Remove a running container (the page asks; force delete).
    page.action(web_id, "Delete")
    page.button("Force delete").click()
    page.until(lambda: api_state(server, "web") is None, "removed (API)")
    page.until(lambda: not browser.find_elements(By.ID, f"expand-toggle{web_id}true"), "removed")
    page.shot("removed")

    messages = [entry["message"] for entry in page.drain_console()]
    assert [m for m in messages if UNHANDLED in m] == []
    severe = [
        e["message"]
        for e in page.console
        if e["level"] == "SEVERE" and not any(known in e["message"] for known in KNOWN)
    ]
    assert severe == []
