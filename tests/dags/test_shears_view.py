"""The Shears view (plugins/shears_web.py) and the plugin's links, in-process: what each page and file route
serves from a real local store, what it refuses, and which link each run outcome gets.

Authentication is Airflow's own (a real API server checks it in tests/dags/test_view_browser.py); here the
one dependency that calls it is replaced, so these tests exercise the routes and the store, not the login.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from shears.errors import ConfigError
from shears.store import layout as L

from tests.dags.view_store import PASSED, REJECTED, make_view_store

REPORT_META_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
                   "form-action 'none'")


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_view_store(tmp_path / "store")
    monkeypatch.setenv("SHEARS_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("SHEARS_STORE_BROWSE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    return tmp_path / "store"


@pytest.fixture
def client(store_dir: Path) -> Any:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from shears_web import create_app, require_reader

    sub = create_app()
    sub.dependency_overrides[require_reader] = lambda: None
    root = FastAPI()
    root.mount("/shears", sub)  # as the API server mounts plugin apps
    return TestClient(root)


def test_index_lists_published_and_rejected_runs_and_the_champion(client: Any) -> None:
    resp = client.get("/shears/")
    assert resp.status_code == 200 and resp.headers["content-security-policy"].startswith("default-src 'none'")
    page = resp.text
    assert f'data-run="{PASSED}" data-status="passed"' in page
    assert f'data-run="{REJECTED}" data-status="rejected"' in page
    assert f'href="/shears/run/{PASSED}"' in page and "★ champion" in page
    assert f"Champion: <a href=\"/shears/run/{PASSED}\">{PASSED}</a> (#3" in page
    assert page.count("<li>#") == 3  # the champion history, newest first


def test_run_page_links_into_the_folder_its_outcome_says(client: Any) -> None:
    ok = client.get(f"/shears/run/{PASSED}").text
    assert f'href="/shears/files/runs/{PASSED}/report.html">Report' in ok
    assert f'href="/shears/files/runs/{PASSED}/model_card.md">Model card' in ok and "Why it was rejected" not in ok
    bad = client.get(f"/shears/run/{REJECTED}").text
    assert f'href="/shears/files/rejected/{REJECTED}/report.html">Report' in bad
    assert f'href="/shears/files/rejected/{REJECTED}/failure.json">Why it was rejected' in bad
    # an Airflow run id is sanitized as the tasks sanitize it; other DAGs' runs are not Shears runs
    assert "no published or rejected folder" in client.get("/shears/run/manual__2026-11-21T05:24:21+00:00").text
    assert "is not a Shears pipeline" in client.get("/shears/run/x?dag_id=shears_data_push").text


def test_files_are_served_with_the_report_csp(client: Any) -> None:
    resp = client.get(f"/shears/files/rejected/{REJECTED}/report.html")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"].startswith(REPORT_META_CSP)
    assert REPORT_META_CSP in resp.text  # the report's own <meta> policy, unchanged
    card = client.get(f"/shears/files/runs/{PASSED}/model_card.md")
    assert card.headers["content-type"].startswith("text/plain") and card.text.startswith("# Model card")
    assert client.get(f"/shears/files/runs/{PASSED}/missing.json").status_code == 404
    assert client.get("/shears/trend").status_code == 200


@pytest.mark.parametrize("path", [
    f"/shears/files/rejected/{REJECTED}/%2e%2e/%2e%2e/champion.json",
    f"/shears/files/runs/{PASSED}/..%2F..%2Fchampion.json",
    f"/shears/files/runs/{PASSED}/%2e%2e%2f%2e%2e%2fclaims/rej-1.json",
    f"/shears/files/staging/{REJECTED}/secret.json",
    "/shears/files/claims/rej-1.json/x",
    f"/shears/files/runs/{PASSED}/.hidden",
    "/shears/files/runs/%2e%2e/champion.json",
    f"/shears/files/runs/{PASSED}/%2Fetc%2Fpasswd",
    f"/shears/files/runs/{PASSED}/a%5C..%5Cb",
])
def test_anything_outside_a_run_folder_is_refused(client: Any, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code in (400, 404), resp.text
    assert "not_served" not in resp.text and '"not"' not in resp.text and "promote" not in resp.text


def test_run_file_names_are_checked_in_the_layout() -> None:
    assert L.check_run_file("models/model_int8.tflite") == "models/model_int8.tflite"
    for bad in ("../champion.json", "a/../b", "/etc/passwd", ".hidden", "a//b", "a\\b", "", "a/./b", "x/"):
        with pytest.raises(ConfigError, match="not a file of a run folder"):
            L.check_run_file(bad)


def _links(run_id: str, dag_id: str = "shears_pipeline") -> dict[str, str]:
    from shears_plugin import ShearsPlugin

    key = SimpleNamespace(dag_id=dag_id, task_id="gate", run_id=run_id, map_index=-1)
    return {link.name: link.get_link(None, ti_key=key) for link in ShearsPlugin.global_operator_extra_links}


def test_links_follow_the_outcome_and_only_existing_targets_are_offered(store_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    base = "http://airflow.example:8080/shears"
    assert _links(PASSED) == {
        "Shears run": f"{base}/run/{PASSED}", "Shears report": f"{base}/files/runs/{PASSED}/report.html",
        "Shears model card": f"{base}/files/runs/{PASSED}/model_card.md",
        "Shears manifest": f"{base}/files/runs/{PASSED}/manifest.json", "Shears rejection": ""}
    assert _links(REJECTED) == {
        "Shears run": f"{base}/run/{REJECTED}", "Shears report": f"{base}/files/rejected/{REJECTED}/report.html",
        "Shears model card": "",  # rejected folders hold no model card here: not offered
        "Shears manifest": f"{base}/files/rejected/{REJECTED}/manifest.json",
        "Shears rejection": f"{base}/files/rejected/{REJECTED}/failure.json"}
    assert set(_links("still-running").values()) == {""}
    assert set(_links(PASSED, dag_id="shears_data_push").values()) == {""}
    monkeypatch.setenv("SHEARS_STORE_BROWSE_URL", "https://artifacts.example.com/shears/")
    assert _links(REJECTED)["Shears report"] == f"https://artifacts.example.com/shears/rejected/{REJECTED}/report.html"


def test_a_broken_store_hides_links_instead_of_breaking_the_page(store_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEARS_STORE", "s3://")  # not a usable store URI
    assert set(_links(PASSED).values()) == {""}


def test_a_symlink_planted_in_a_run_folder_is_never_followed(client: Any, store_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.pem").write_text("-----BEGIN EC PRIVATE KEY-----\n")
    run = store_dir / "runs" / PASSED
    (run / "leak.txt").symlink_to(secret)
    (run / "linked").symlink_to(outside, target_is_directory=True)
    for path in (f"/shears/files/runs/{PASSED}/leak.txt", f"/shears/files/runs/{PASSED}/linked/key.pem"):
        resp = client.get(path)
        assert resp.status_code == 502 and "symbolic link: refused" in resp.text, (path, resp.text)
        assert "hunter2" not in resp.text and "PRIVATE KEY" not in resp.text
    page = client.get(f"/shears/run/{PASSED}").text
    assert "leak.txt" not in page and "key.pem" not in page  # never listed either
