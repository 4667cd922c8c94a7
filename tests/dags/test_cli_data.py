"""`shears data push` against a stub of Airflow's REST API (token, asset lookup, event creation).

Against a real API server, scheduler and S3: tests/integration/test_celery_pipeline.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import typer
from shears.cli.data import register
from typer.testing import CliRunner

from tests.dags.airflow_env import write_digits_npz

runner = CliRunner()


def _app() -> typer.Typer:
    """The `shears` app shape: a `data` sub-app that cli_data registers `push` on."""
    app = typer.Typer()
    data_app = typer.Typer()
    app.add_typer(data_app, name="data")
    register(data_app)
    return app


class StubAirflow:
    def __init__(self, asset_uri: str) -> None:
        self.asset_uri = asset_uri
        self.requests: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict[str, Any] | None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                stub.requests.append((self.command, self.path, body, self.headers.get("Authorization")))
                return body

            def do_POST(self) -> None:
                body = self._record()
                if self.path == "/auth/token":
                    ok = body == {"username": "admin", "password": "pw"}
                    self._reply(201 if ok else 401, {"access_token": "tok"} if ok else {"detail": "bad"})
                elif self.path == "/api/v2/assets/events":
                    if self.headers.get("Authorization") != "Bearer tok":
                        self._reply(401, {"detail": "Not authenticated"})
                    else:
                        self._reply(200, {"id": 7, "asset_id": body["asset_id"], "timestamp": "2026-11-21T05:00:00Z"})
                else:
                    self._reply(404, {})

            def do_GET(self) -> None:
                self._record()
                url = urlsplit(self.path)
                pattern = parse_qs(url.query).get("uri_pattern", [""])[0]
                assets = [{"id": 3, "uri": stub.asset_uri + ".bak"}, {"id": 5, "uri": stub.asset_uri}]
                self._reply(200, {"assets": [a for a in assets if pattern in a["uri"]], "total_entries": 2})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    t = tmp_path / "incoming" / "data.npz"
    monkeypatch.setenv("SHEARS_DATA_URI", t.as_uri())
    for var in ("SHEARS_AIRFLOW_TOKEN", "SHEARS_AIRFLOW_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHEARS_AIRFLOW_USERNAME", "admin")
    monkeypatch.setenv("SHEARS_AIRFLOW_PASSWORD", "pw")
    return t


@pytest.fixture
def stub(target: Path) -> Iterator[StubAirflow]:
    s = StubAirflow(target.as_uri())
    yield s
    s.server.shutdown()


def test_push_copies_the_file_and_emits_the_event(tmp_path: Path, target: Path, stub: StubAirflow) -> None:
    src = write_digits_npz(tmp_path / "new.npz")
    res = runner.invoke(_app(), ["data", "push", str(src), "--airflow-url", stub.url])
    assert res.exit_code == 0, res.output
    assert target.read_bytes() == src.read_bytes()
    assert "asset event 7" in res.output
    method, path, body, auth = stub.requests[-1]
    assert (method, path, auth) == ("POST", "/api/v2/assets/events", "Bearer tok")
    assert body is not None and body["asset_id"] == 5  # the exact URI, not the look-alike
    assert body["extra"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_push_without_source_announces_the_data_in_place(target: Path, stub: StubAirflow) -> None:
    write_digits_npz(target)
    res = runner.invoke(_app(), ["data", "push", "--airflow-url", stub.url])
    assert res.exit_code == 0, res.output
    assert stub.requests[-1][1] == "/api/v2/assets/events"


def test_corrupt_data_is_refused_before_anything_moves(tmp_path: Path, target: Path, stub: StubAirflow) -> None:
    src = tmp_path / "bad.npz"
    src.write_bytes(b"not a zip")
    res = runner.invoke(_app(), ["data", "push", str(src), "--airflow-url", stub.url])
    assert res.exit_code == 3, res.output
    assert not target.exists() and stub.requests == []


def test_no_event_only_copies(tmp_path: Path, target: Path) -> None:
    src = write_digits_npz(tmp_path / "new.npz")
    res = runner.invoke(_app(), ["data", "push", str(src), "--no-event"])
    assert res.exit_code == 0, res.output
    assert target.is_file()


def test_unknown_asset_and_bad_credentials_are_reported(tmp_path: Path, target: Path, stub: StubAirflow,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_digits_npz(tmp_path / "new.npz")
    res = runner.invoke(_app(), ["data", "push", str(src), "--to", str(tmp_path / "elsewhere.npz"),
                                 "--airflow-url", stub.url])
    assert res.exit_code == 2 and "knows no asset" in res.output
    monkeypatch.setenv("SHEARS_AIRFLOW_PASSWORD", "wrong")
    res = runner.invoke(_app(), ["data", "push", str(src), "--airflow-url", stub.url])
    assert res.exit_code == 1 and "HTTP 401" in res.output


def test_unreachable_airflow_is_exit_1(tmp_path: Path, target: Path) -> None:
    src = write_digits_npz(tmp_path / "new.npz")
    res = runner.invoke(_app(), ["data", "push", str(src), "--airflow-url", "http://127.0.0.1:9"])
    assert res.exit_code == 1 and "cannot reach Airflow" in res.output


def test_a_csv_with_another_label_column_is_checked_with_that_column(tmp_path: Path) -> None:
    """The check parses with the pipeline's label column: `species` here, refused under the default `label`."""
    rows = ["a,b,species"] + [f"{i % 7}.0,{i % 5}.0,{'xy'[i % 2]}" for i in range(60)]
    src = tmp_path / "flowers.csv"
    src.write_text("\n".join(rows) + "\n")
    dest = tmp_path / "incoming" / "flowers.csv"
    refused = runner.invoke(_app(), ["data", "push", str(src), "--to", str(dest), "--no-event"])
    assert refused.exit_code != 0 and "label" in refused.output and not dest.exists()
    res = runner.invoke(_app(), ["data", "push", str(src), "--to", str(dest), "--no-event",
                                 "--label-column", "species"])
    assert res.exit_code == 0, res.output
    assert dest.read_bytes() == src.read_bytes()
