"""The Shears view in the real Airflow UI: a real `airflow api-server` (loopback, free port, stopped by PID) with
the simple auth manager and one user, on a SQLite home, serving a local store with a passing and a rejected run;
real headless Chromium logs in, opens the Shears page and both runs' reports through the UI's own views.

Also over HTTP against the same server: the plugin endpoints answer 401 without a login and 403 with a bad
token, refuse `../`, and every extra link the API offers for a task of either run answers 200.
Screenshots go to the test's temp dir (and to $SHEARS_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dags.airflow_env import BIN, AirflowHome
from tests.dags.view_store import PASSED, REJECTED, make_view_store
from tests.integration.cluster import free_port
from tests.report.test_browser import CHROMEDRIVER, CHROMIUM, FLAGS, _need_browser, full_page_png

pytestmark = [pytest.mark.airflow, pytest.mark.browser]

USER, PASSWORD = "ada", "pw-" + secrets.token_hex(6)
DAG = "shears_pipeline"


class Server:
    def __init__(self, home: AirflowHome, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.home, self.port, self.proc, self.log = home, port, proc, log
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.base + path, headers=headers, timeout=20, **kw)

    def token(self) -> str:
        resp = self.request("POST", "/auth/token", json={"username": USER, "password": PASSWORD})
        assert resp.status_code in (200, 201), resp.text
        return str(resp.json()["access_token"])

    def stop(self) -> None:
        """SIGTERM the server's process group by its PID, bounded wait, then SIGKILL."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("view")
    store = make_view_store(root / "store")
    port = free_port()
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    home = AirflowHome(root, **{
        "SHEARS_STORE": store.uri,
        "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
    })
    home.env.pop("SHEARS_STORE_BROWSE_URL", None)
    home.migrate()
    home.airflow("dags", "reserialize", check=True, timeout=300)
    log = root / "api-server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(BIN / "airflow"), "api-server"], env=home.env, cwd=root, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    srv = Server(home, port, proc, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"api-server exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if srv.request("GET", "/api/v2/monitor/health").status_code == 200:
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline, f"api-server not healthy in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        token = srv.token()
        for run_id in (PASSED, REJECTED):  # DAG runs whose ids are the store's run ids (no scheduler: queued)
            resp = srv.request("POST", f"/api/v2/dags/{DAG}/dagRuns", token,
                               json={"dag_run_id": run_id, "logical_date": None})
            assert resp.status_code == 200, resp.text
        yield srv
    finally:
        srv.stop()
    assert proc.poll() is not None


def test_plugin_endpoints_need_a_login(server: Server) -> None:
    for path in ("/shears/", f"/shears/run/{PASSED}", f"/shears/files/runs/{PASSED}/report.html", "/shears/trend"):
        assert server.request("GET", path).status_code == 401, path
        assert server.request("GET", path, token="not-a-token").status_code == 403, path
        assert server.request("GET", path, cookies={"_token": "forged"}).status_code == 403, path
    ok = server.request("GET", f"/shears/files/runs/{PASSED}/report.html", server.token())
    assert ok.status_code == 200 and "default-src 'none'" in ok.headers["content-security-policy"]


def test_plugin_endpoints_refuse_paths_outside_run_folders(server: Server) -> None:
    token = server.token()
    for path in (f"/shears/files/runs/{PASSED}/%2e%2e/%2e%2e/champion.json",
                 f"/shears/files/rejected/{REJECTED}/..%2F..%2Fstaging%2Frej-1%2Fsecret.json",
                 f"/shears/files/staging/{REJECTED}/secret.json"):
        resp = server.request("GET", path, token)
        assert resp.status_code == 400, (path, resp.status_code, resp.text[:300])
    raw = server.request("GET", f"/shears/files/runs/{PASSED}/../../champion.json", token)  # client-normalized
    assert raw.status_code == 404 and "promote" not in raw.text


@pytest.mark.parametrize(("run_id", "area", "absent"), [(PASSED, "runs", "Shears rejection"),
                                                        (REJECTED, "rejected", "Shears model card")])
def test_extra_links_resolve_for_each_outcome(server: Server, run_id: str, area: str, absent: str) -> None:
    token = server.token()
    resp = server.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/gate/links", token)
    assert resp.status_code == 200, resp.text
    links = resp.json()["extra_links"]
    assert links[absent] is None  # a link whose target does not exist is not offered
    offered = {name: url for name, url in links.items() if url}
    assert offered["Shears report"] == f"{server.base}/shears/files/{area}/{run_id}/report.html"
    assert len(offered) >= 3
    for name, url in offered.items():
        got = server.request("GET", url.removeprefix(server.base), token)
        assert got.status_code == 200, (name, url, got.status_code)


# --------------------------------------------------------------------------- real Chromium


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*[f for f in FLAGS if not f.startswith("--window-size")], "--window-size=1400,1000",
                 f"--user-data-dir={profile / 'profile'}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(profile / "chromedriver.log")),
                           options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def _wait(driver: Any, what: str, condition: Any, timeout: float = 45) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what} at {driver.current_url}") from exc


def _shot(driver: Any, out: Path, name: str) -> Path:
    path = out / name
    path.write_bytes(driver.get_screenshot_as_png())
    if target := os.environ.get("SHEARS_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def _title(driver: Any) -> str:
    """The title of the document in the current frame (WebDriver's own title is the top-level page's)."""
    return str(driver.execute_script("return document.title"))


def _in_iframe(driver: Any, what: str) -> None:
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frame = _wait(driver, f"the {what} iframe", lambda d: d.find_elements(By.CSS_SELECTOR, "iframe"))[0]
    driver.switch_to.frame(frame)


def test_log_in_and_go_from_the_ui_to_both_reports(server: Server, driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.base + "/")
    user = _wait(driver, "the login form", lambda d: d.find_elements(By.NAME, "username"))[0]
    user.send_keys(USER)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, "the UI after login", lambda d: d.get_cookie("_token") is not None)

    # The "Shears" page in the navigation: the plugin's app in an iframe, same origin, with the UI's cookie.
    driver.get(server.base + "/plugin/shears")
    _wait(driver, "the Shears nav entry", lambda d: "Shears" in d.find_element(By.TAG_NAME, "body").text)
    _in_iframe(driver, "Shears page")
    _wait(driver, "the runs table", lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-run='{PASSED}']"))
    statuses = {tr.get_attribute("data-run"): tr.get_attribute("data-status")
                for tr in driver.find_elements(By.CSS_SELECTOR, "#runs tr[data-run]")}
    assert statuses[PASSED] == "passed" and statuses[REJECTED] == "rejected"
    assert PASSED in driver.find_element(By.ID, "champion").text
    driver.switch_to.default_content()
    _shot(driver, tmp_path, "1-shears-page.png")

    # Passing run: Shears page -> run -> Report.
    _in_iframe(driver, "Shears page")
    driver.find_element(By.LINK_TEXT, PASSED).click()
    _wait(driver, "the run page", lambda d: d.find_elements(By.ID, "outcome"))
    assert driver.find_element(By.ID, "outcome").text.startswith("published")
    driver.find_element(By.LINK_TEXT, "Report").click()
    _wait(driver, "the passing report", lambda d: _title(d).startswith(f"Shears run {PASSED}"))
    assert driver.find_elements(By.ID, "gates")
    driver.switch_to.default_content()
    _shot(driver, tmp_path, "2-passing-report-in-ui.png")

    # Rejected run, from its DAG run page: the "Shears" tab -> Report (two clicks from the run).
    driver.get(f"{server.base}/dags/{DAG}/runs/{REJECTED}/plugin/shears_run")
    _in_iframe(driver, "DAG-run Shears tab")
    _wait(driver, "the rejected run page", lambda d: d.find_elements(By.ID, "outcome"))
    assert driver.find_element(By.ID, "outcome").text.startswith("rejected")
    driver.switch_to.default_content()
    _shot(driver, tmp_path, "3-dag-run-shears-tab-rejected.png")
    _in_iframe(driver, "DAG-run Shears tab")
    driver.find_element(By.LINK_TEXT, "Report").click()
    _wait(driver, "the rejected report", lambda d: _title(d).startswith(f"Shears run {REJECTED}"))
    assert "FAIL" in driver.find_element(By.ID, "gates").text
    driver.switch_to.default_content()
    _shot(driver, tmp_path, "4-rejected-report-in-ui.png")

    # The report served on its own (what the "Shears report" extra link opens), full page.
    driver.get(f"{server.base}/shears/files/rejected/{REJECTED}/report.html")
    _wait(driver, "the report page", lambda d: d.title.startswith(f"Shears run {REJECTED}"))
    (tmp_path / "5-rejected-report-direct.png").write_bytes(full_page_png(driver))
    if target := os.environ.get("SHEARS_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "5-rejected-report-direct.png", Path(target) / "5-rejected-report-direct.png")
