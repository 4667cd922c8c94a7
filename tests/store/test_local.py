from __future__ import annotations

import stat
from pathlib import Path

import pytest
from shears.errors import ConfigError, StoreError
from shears.store import LocalStore, PreconditionFailed, open_store, parse_s3_uri, sha256_hex
from shears.store import local as local_module


def test_local_store_roundtrip_and_listing(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.put("a/b/c.bin", b"123")
    s.put("a/d.json", b"{}")
    assert s.get("a/b/c.bin") == b"123" and s.exists("a/d.json") and not s.exists("a/x")
    assert s.list("a/") == ["a/b/c.bin", "a/d.json"]
    s.delete_prefix("a/b")
    assert s.list("a/") == ["a/d.json"]
    with pytest.raises(StoreError):
        s.get("nope")
    with pytest.raises(StoreError):
        s.put("../escape", b"")


def test_conditional_writes(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    etag = s.put_if("k.json", b"1", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        s.put_if("k.json", b"2", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        s.put_if("k.json", b"2", if_match="stale", if_none_match=False)
    s.put_if("k.json", b"2", if_match=etag, if_none_match=False)
    assert s.get("k.json") == b"2" and len(s.versions("k.json")) == 2


def test_store_uris() -> None:
    assert parse_s3_uri("s3://b/p/q/") == ("b", "p/q")
    with pytest.raises(ConfigError):
        open_store("gs://bucket")


def test_local_store_files_honour_the_umask(tmp_path: Path) -> None:
    """Workers may run as another user than the one who pushed the data: files must not be 0600."""
    LocalStore(tmp_path).put("d/x.bin", b"1")
    mode = stat.S_IMODE((tmp_path / "d" / "x.bin").stat().st_mode)
    assert mode == 0o666 & ~local_module._UMASK


def test_local_store_listing_hides_its_bookkeeping(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if("champion.json", b"1", if_match=None, if_none_match=True)
    store.put_if("champion.json", b"2", if_match=sha256_hex(b"1"), if_none_match=False)
    assert store.list("") == ["champion.json"]


def test_symlinks_inside_the_store_are_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "key.pem").write_text("PRIVATE")
    store = LocalStore(tmp_path / "store")
    store.put("runs/r/ok.txt", b"ok")
    (tmp_path / "store" / "runs" / "r" / "leak.txt").symlink_to(secret)
    (tmp_path / "store" / "runs" / "r" / "dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert store.list("runs/") == ["runs/r/ok.txt"]
    for key in ("runs/r/leak.txt", "runs/r/dir/key.pem"):
        for read in (store.get, store.exists, store.head, lambda k: list(store.iter_bytes(k))):
            with pytest.raises(StoreError, match="is reached through a symbolic link: refused"):
                read(key)
    assert list(store.iter_bytes("runs/r/ok.txt", chunk_size=1)) == [b"o", b"k"]
