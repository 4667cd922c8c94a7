"""S3Store against a real SeaweedFS server: the Store protocol, checksums, multipart, conditions, errors."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from shears.errors import ConfigError, StoreError
from shears.store import ObjectInfo, PreconditionFailed, Store, open_store, read_uri
from shears.store.s3 import MULTIPART_THRESHOLD, S3Store

from tests.s3.util import BUCKET, VERSIONED
from tests.seaweed import SeaweedServer


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_store_protocol_roundtrip(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{BUCKET}/unit/proto")
    assert isinstance(store, S3Store) and isinstance(store, Store) and store.uri == f"s3://{BUCKET}/unit/proto"
    store.put("a/b.json", b"{}")
    store.put("a/c.bin", b"xyz")
    store.put("ab/d.bin", b"d")
    assert store.get("a/c.bin") == b"xyz" and store.exists("a/b.json") and not store.exists("a/zz")
    assert store.list("a") == store.list("a/") == ["a/b.json", "a/c.bin"]  # directory semantics
    assert store.list("") == ["a/b.json", "a/c.bin", "ab/d.bin"]
    info = store.head("a/c.bin")
    assert isinstance(info, ObjectInfo) and info.key == "a/c.bin" and info.size == 3 and info.etag
    assert store.head("missing") is None
    with pytest.raises(StoreError, match=r"^not found in store s3://shears-test/unit/proto: nope$"):
        store.get("nope")
    with pytest.raises(StoreError):
        store.put("../escape", b"")
    store.delete_prefix("a")
    assert store.list("") == ["ab/d.bin"]


def test_put_sends_sha256_checksum(seaweed: SeaweedServer) -> None:
    store = S3Store(BUCKET, "unit/sum", client=seaweed.client())
    store.put("small.bin", b"hello")
    head = seaweed.client().head_object(Bucket=BUCKET, Key="unit/sum/small.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _b64sha(b"hello")


def test_large_files_use_multipart(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{BUCKET}/unit/big")
    data = os.urandom(MULTIPART_THRESHOLD + 1024 * 1024)
    store.put("big.bin", data)
    info = store.head("big.bin")
    assert info is not None and info.size == len(data) and info.etag.strip('"').endswith("-2")  # two parts
    head = seaweed.client().head_object(Bucket=BUCKET, Key="unit/big/big.bin", ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256", "").endswith("-2")  # per-part SHA256, composite
    assert store.get("big.bin") == data


def test_conditional_writes_map_412_to_precondition_failed(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{BUCKET}/unit/cond")
    etag = store.put_if("k.json", b"1", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed, match=r"k\.json in s3://shears-test/unit/cond changed since it was read"):
        store.put_if("k.json", b"2", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put_if("k.json", b"2", if_match='"0123456789abcdef0123456789abcdef"', if_none_match=False)
    new = store.put_if("k.json", b"2", if_match=etag, if_none_match=False)
    assert new != etag and store.get("k.json") == b"2"
    head = store.head("k.json")
    assert head is not None and head.etag == new
    assert store.versions("k.json") == ["current"]  # plain bucket: no history


def test_versions_on_a_versioned_bucket(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{VERSIONED}/unit")
    etags = [store.put_if("p.json", b"0", if_match=None, if_none_match=True)]
    for body in (b"1", b"2"):
        etags.append(store.put_if("p.json", body, if_match=etags[-1], if_none_match=False))
    ids = store.versions("p.json")
    assert len(ids) == 3 and len(set(ids)) == 3
    client = seaweed.client()
    bodies = [client.get_object(Bucket=VERSIONED, Key="unit/p.json", VersionId=v)["Body"].read() for v in ids]
    assert bodies == [b"0", b"1", b"2"]  # oldest first
    assert store.versions("absent.json") == []


def test_missing_bucket_and_missing_credentials_are_one_line_errors(
    seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match=rf"^S3 bucket no-such-bucket does not exist at {seaweed.endpoint}$"):
        open_store("s3://no-such-bucket/x").exists("anything")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match=rf"^no usable AWS credentials for bucket {BUCKET} at {seaweed.endpoint}"):
        open_store(f"s3://{BUCKET}/x").exists("anything")


def test_wrong_credentials_name_bucket_and_endpoint(seaweed: SeaweedServer) -> None:
    bad = S3Store(BUCKET, "unit", client=seaweed.client(secret_key="not-the-secret-0000"))
    for op in (lambda: bad.exists("k"), lambda: bad.put("k", b"1"), lambda: bad.list(""), lambda: bad.get("k")):
        with pytest.raises(StoreError) as exc:
            op()
        assert str(exc.value) == f"S3 access denied for bucket {BUCKET} at {seaweed.endpoint}: SignatureDoesNotMatch"


def test_read_uri_reads_s3_objects(seaweed: SeaweedServer) -> None:
    seaweed.client().put_object(Bucket=BUCKET, Key="unit/input/blob.bin", Body=b"payload")
    assert read_uri(f"s3://{BUCKET}/unit/input/blob.bin") == b"payload"
    with pytest.raises(ConfigError, match=r"^file not found: s3://shears-test/unit/input/none\.npz$"):
        read_uri(f"s3://{BUCKET}/unit/input/none.npz")


def test_objects_stream_in_bounded_chunks(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{BUCKET}/unit/stream")
    data = os.urandom(3 * (1 << 20) + 17)
    store.put("big.bin", data)
    chunks = list(store.iter_bytes("big.bin", chunk_size=1 << 20))
    assert b"".join(chunks) == data and len(chunks) == 4 and max(len(c) for c in chunks) <= 1 << 20
    with pytest.raises(StoreError, match="not found in store"):
        list(store.iter_bytes("missing.bin"))


def test_read_uri_refuses_an_object_over_its_limit_from_its_size(seaweed: SeaweedServer) -> None:
    store = open_store(f"s3://{BUCKET}/unit/limit")
    store.put("m.keras", b"x" * 1000)
    with pytest.raises(ConfigError, match=r"m\.keras is 1,000 bytes; the limit is 999"):
        read_uri(f"s3://{BUCKET}/unit/limit/m.keras", max_bytes=999)
    assert read_uri(f"s3://{BUCKET}/unit/limit/m.keras", max_bytes=1000) == b"x" * 1000
