"""No credential ever reaches a log line, CLI output or stored record.

Runs last in this folder (file order), so it also sees the transcripts of the CLI calls made by the
other S3 tests; run alone it still checks the session's published runs.
"""

from __future__ import annotations

import logging

import pytest
from shears.errors import StoreError
from shears.store import open_store
from shears.store.s3 import S3Store

from tests.s3.util import BUCKET, VERSIONED, Flow, Transcript, all_objects
from tests.seaweed import SeaweedServer


def test_no_secret_in_output_logs_or_records(
    flow: Flow, seaweed: SeaweedServer, transcript: Transcript, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, botocore's request logging included
    store = open_store(f"s3://{BUCKET}/secrets")
    store.put("x.json", b"{}")
    store.put_if("y.json", b"{}", if_match=None, if_none_match=True)
    errors = []
    for client in (seaweed.client(secret_key="wrong-secret-for-logs"), seaweed.client(access_key="AKWRONGFORLOGS0")):
        bad = S3Store(BUCKET, "secrets", client=client)
        with pytest.raises(StoreError) as exc:
            bad.put("z.json", b"{}")
        errors.append(str(exc.value))
    logs = [r.getMessage() for r in caplog.records]
    texts = {"CLI output": "\n".join(transcript.lines), "log records": "\n".join(logs), "errors": "\n".join(errors)}
    assert transcript.lines, "the CLI ran at least once (run A of the flow)"
    for name, text in texts.items():
        assert seaweed.secret_key not in text, f"secret key in {name}"
        assert "wrong-secret-for-logs" not in text, f"a (wrong) secret key in {name}"
    for name in ("CLI output", "errors"):
        assert seaweed.access_key not in texts[name], f"access key id in {name}"
    for bucket in (BUCKET, VERSIONED):
        for key, data in all_objects(seaweed.client(), bucket).items():
            assert seaweed.secret_key.encode() not in data, f"secret key stored in s3://{bucket}/{key}"
            assert seaweed.access_key.encode() not in data, f"access key id stored in s3://{bucket}/{key}"
