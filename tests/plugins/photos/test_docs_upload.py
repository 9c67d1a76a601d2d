"""The docs page can upload a photo: headless Chromium, driven through chromedriver's WebDriver protocol (plain HTTP,
no extra package), opens the PUT operation in Swagger UI, picks a JPEG file, executes, and the pet has its photo;
the GET operation then shows it, all under the page's CSP and with a clean console."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import migrated_database
from tests.plugins.core.handlers.test_docs import CHROMIUM_FLAGS
from tests.plugins.photos import images
from tests.processes import ServerProcess, free_port, login, request, server_env

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
OPERATION = "#operations-photos-put_v1_pets_pet_id_photo"
DOWNLOAD = "#operations-photos-get_v1_pets_pet_id_photo"


class WebDriver:
    """The few WebDriver commands the test needs, over chromedriver's HTTP endpoint."""

    def __init__(self, port: int) -> None:
        self.port = port
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": CHROMIUM_FLAGS},
            "goog:loggingPrefs": {"browser": "ALL"}}}})
        self.session = f"/session/{session['sessionId']}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=None if body is None else orjson.dumps(body),
                         headers={"Content-Type": "application/json"})
            answer = orjson.loads(conn.getresponse().read())["value"]
        finally:
            conn.close()
        if isinstance(answer, dict) and "error" in answer:
            raise AssertionError(f"{method} {path}: {answer['error']}: {answer.get('message', '')[:300]}")
        return answer

    def run(self, script: str, *args: Any) -> Any:
        return self.call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str, timeout: float = 20) -> str:
        """The first element matching css, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.call("POST", f"{self.session}/elements", {"using": "css selector", "value": css})
            if found:
                return str(found[0][ELEMENT])
            assert time.monotonic() < deadline, f"no {css}"
            time.sleep(0.2)

    def click(self, css: str) -> None:
        self.call("POST", f"{self.session}/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        self.call("POST", f"{self.session}/element/{self.find(css)}/value", {"text": text})

    def console(self) -> list[str]:
        """The browser's console entries since the last call (CSP violations and failed loads included)."""
        return [f"{entry['level']} {entry['message']}"
                for entry in self.call("POST", f"{self.session}/se/log", {"type": "browser"})]

    def quit(self) -> None:
        self.call("DELETE", self.session)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver_path = shutil.which("chromedriver")
    assert driver_path, "chromedriver is needed: apt-get install chromium-driver (scripts/test.sh does)"
    port = free_port()
    driver = subprocess.Popen([driver_path, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        browser = WebDriver(port)
        yield browser
        browser.quit()
    finally:
        driver.terminate()
        driver.wait(10)


@pytest.mark.slow
def test_the_docs_page_uploads_a_photo_and_shows_it(browser: WebDriver, mysql_server_url: str, tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "server.log", server_env(migrated_database(mysql_server_url, "photo_docs"))) as srv:
        _, token = login(srv.port)
        pet = request(srv.port, "POST", "/v1/pets", json={"name": "Rex", "species": "dog"}, token=token).json()["data"]
        picture = tmp_path / "rex.jpg"
        picture.write_bytes(images.jpeg_with_gps_rotated())

        browser.call("POST", f"{browser.session}/url", {"url": f"http://127.0.0.1:{srv.port}/v1/docs"})
        browser.find(OPERATION)
        browser.run("window.ui.authActions.authorize({bearerAuth: {name: 'bearerAuth', value: arguments[0],"
                    " schema: {type: 'http', scheme: 'bearer'}}})", token)
        browser.click(f"{OPERATION} .opblock-summary")
        browser.click(f"{OPERATION} .try-out__btn")
        browser.type(f"{OPERATION} input[placeholder='pet_id']", str(pet["id"]))
        browser.type(f"{OPERATION} input[type='file']", str(picture))
        browser.click(f"{OPERATION} .execute")
        status = browser.find(f"{OPERATION} .live-responses-table tr.response .response-col_status")
        text = browser.call("GET", f"{browser.session}/element/{status}/text")
        assert text.strip() == "201", text

        photo = request(srv.port, "GET", f"/v1/pets/{pet['id']}", token=token).json()["data"]["photo"]
        assert photo is not None
        assert (photo["content_type"], photo["width"], photo["height"]) == ("image/jpeg", 200, 300)

        # ... and shows it again from GET: Swagger UI puts an image answer in an <img> with an object (blob:) URL.
        browser.click(f"{DOWNLOAD} .opblock-summary")
        browser.click(f"{DOWNLOAD} .try-out__btn")
        browser.type(f"{DOWNLOAD} input[placeholder='pet_id']", str(pet["id"]))
        browser.click(f"{DOWNLOAD} .execute")
        shown = {ELEMENT: browser.find(f"{DOWNLOAD} .live-responses-table tr.response img")}
        deadline = time.monotonic() + 10
        while not browser.run("return arguments[0].complete", shown) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert browser.run("return [arguments[0].src.slice(0, 5), arguments[0].naturalWidth]", shown) == ["blob:", 200]
        # The whole visit: no CSP violation, no failed load (the page names its icon, so no /favicon.ico 404).
        assert browser.console() == []
