"""`shears data push`: put new data where Airflow's data asset points, then announce it.

1. (optional) parse the file the way the pipeline will (exit 3 on corrupt data, before anything moves);
2. copy it to the data URI — `--to`, else $SHEARS_DATA_URI, else file://$AIRFLOW_HOME/shears-incoming/data.npz
   (shears.store.datauri, shared with plugins/shears_airflow.py, so the CLI and the DAGs agree without configuration);
   local copies are atomic (temp file + rename), s3:// copies go through shears.store.s3;
3. emit an asset event through Airflow's REST API (POST /api/v2/assets/events) with the file's
   sha256 and size; the scheduler then starts a `shears_pipeline` run.

Authentication: $SHEARS_AIRFLOW_TOKEN, or $SHEARS_AIRFLOW_USERNAME + $SHEARS_AIRFLOW_PASSWORD
(exchanged at POST /auth/token). Nothing here imports Airflow or TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from shears.cli.common import fail, line, out
from shears.errors import ConfigError, ShearsError
from shears.store.datauri import default_data_uri, local_path, location

DEFAULT_AIRFLOW_URL = "http://127.0.0.1:8080"
HTTP_TIMEOUT_S = 30.0


class AirflowApiError(ShearsError):
    """The Airflow REST API could not be reached or refused the request (exit 1)."""


def _normalize(uri: str) -> str:
    """Plain paths become absolute file:// URIs (Airflow asset URIs are URIs); URIs are kept as given."""
    local = local_path(uri)  # ConfigError for an unsupported scheme
    if local is None:
        return uri
    return (local if uri.startswith("file://") else local.resolve()).as_uri()


def _copy(data: bytes, uri: str) -> None:
    local = local_path(uri)
    if local is None:
        from shears.store import parse_s3_uri
        from shears.store.s3 import S3Store

        bucket, key = parse_s3_uri(uri)
        if not key:
            raise ConfigError(f"S3 URI names no object: {uri}")
        S3Store(bucket, "").put(key, data)
        return
    from shears.store import LocalStore

    LocalStore(local.parent).put(local.name, data)  # temp file + rename: readers never see half a file


def _read(uri: str) -> bytes:
    from shears.store import read_uri

    return read_uri(location(uri))


class AirflowClient:
    """The two REST calls needed, over urllib (no extra dependency)."""

    def __init__(self, base_url: str, token: str | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self._token = token
        self._username = username
        self._password = password

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 auth: bool = True) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300].replace("\n", " ")
            hint = " (set SHEARS_AIRFLOW_TOKEN or SHEARS_AIRFLOW_USERNAME/PASSWORD)" if exc.code in (401, 403) else ""
            raise AirflowApiError(f"Airflow API {method} {path}: HTTP {exc.code}{hint}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AirflowApiError(f"cannot reach Airflow at {self.base}: {reason}") from None

    def token(self) -> str:
        if self._token is None:
            if not (self._username and self._password):
                raise ConfigError("no Airflow credentials: set SHEARS_AIRFLOW_TOKEN, or SHEARS_AIRFLOW_USERNAME "
                                  "and SHEARS_AIRFLOW_PASSWORD (or pass --no-event)")
            out = self._request("POST", "/auth/token", {"username": self._username, "password": self._password},
                                auth=False)
            self._token = str(out["access_token"])
        return self._token

    def asset_id(self, uri: str) -> int:
        query = urllib.parse.urlencode({"uri_pattern": uri, "limit": 100})
        out = self._request("GET", f"/api/v2/assets?{query}")
        for asset in out.get("assets", []):
            if asset.get("uri") == uri:
                return int(asset["id"])
        raise ConfigError(f"Airflow at {self.base} knows no asset {uri}: is shears_pipeline deployed with "
                          "SHEARS_DATA_URI set to it?")

    def emit(self, uri: str, extra: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = self._request("POST", "/api/v2/assets/events",
                                              {"asset_id": self.asset_id(uri), "extra": extra})
        return event


def push(
    source: Annotated[Path | None, typer.Argument(help="data file to upload (NPZ/CSV/Parquet); omit to "
                                                       "announce the data already at the target")] = None,
    to: Annotated[str | None, typer.Option("--to", help="data URI (default: $SHEARS_DATA_URI or "
                                                         "file://$AIRFLOW_HOME/shears-incoming/data.npz)")] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="parse the data before copying it")] = True,
    label_column: Annotated[str, typer.Option("--label-column", help="CSV/Parquet column holding the label "
                                              "(the pipeline config's data.label_column)")] = "label",
    event: Annotated[bool, typer.Option("--event/--no-event", help="emit the Airflow asset event")] = True,
    airflow_url: Annotated[str | None, typer.Option("--airflow-url", help="Airflow API server (default: "
                                                    f"$SHEARS_AIRFLOW_URL or {DEFAULT_AIRFLOW_URL})")] = None,
) -> None:
    """Copy new data to the pipeline's data location and emit the asset event that starts a run."""
    try:
        target = _normalize(to or default_data_uri())
        if source is not None:
            if not source.is_file():
                raise ConfigError(f"file not found: {source}")
            data = source.read_bytes()
        else:
            data = _read(target)
        if check:
            from shears.stages.data import parse_dataset

            parse_dataset(data, target, label_column)  # DataError / ConfigError before anything moves
        if source is not None:
            _copy(data, target)
            line(out, f"copied {source} ({len(data):,} bytes) -> {target}")
        extra = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "source": "shears data push"}
        if not event:
            line(out, "no asset event emitted (--no-event)")
            return
        client = AirflowClient(
            airflow_url or os.environ.get("SHEARS_AIRFLOW_URL") or DEFAULT_AIRFLOW_URL,
            token=os.environ.get("SHEARS_AIRFLOW_TOKEN") or None,
            username=os.environ.get("SHEARS_AIRFLOW_USERNAME") or None,
            password=os.environ.get("SHEARS_AIRFLOW_PASSWORD") or None,
        )
        emitted = client.emit(target, extra)
        line(out, f"asset event {emitted.get('id')} for {target} at {emitted.get('timestamp')}: "
                  "shears_pipeline will start a run")
    except ShearsError as exc:
        raise fail(exc) from None


def register(data_app: typer.Typer) -> None:
    """Add `push` to the `shears data` sub-app."""
    data_app.command("push")(push)
