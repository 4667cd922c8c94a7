"""The loading child: what it can see of the parent (environment, limits), and what happens when it misbehaves."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from shears.errors import ConfigError
from shears.keras.intake import Limits
from shears.keras.sandbox import SandboxLimits, child_env, load_in_child

from tests.keras import evil

pytestmark = pytest.mark.tf

SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "hunter2", "SHEARS_SIGNING_KEY": "/k.pem",
           "SHEARS_SIGNING_KEY_PASSPHRASE": "pw", "AIRFLOW_CONN_AWS_DEFAULT": "aws://x:y@", "AIRFLOW__CORE__FERNET_KEY":
           "f", "PYTHONPATH": "/evil", "LD_PRELOAD": "/evil.so"}


def _model() -> bytes:
    return evil.keras_zip(evil.k2_sequential(evil.dense()), weights=evil.weights_h5())


def test_the_child_environment_is_an_allow_list(tmp_path: Path) -> None:
    env = child_env(tmp_path, {**SECRETS, "PATH": "/usr/bin", "LANG": "C.UTF-8"})
    assert not set(SECRETS) & set(env)
    assert env["PATH"] == "/usr/bin" and env["HOME"] == str(tmp_path) and env["TMPDIR"] == str(tmp_path)


def _watch_children(seen: dict[str, str], stop: threading.Event) -> None:
    """Read the environment and limits of this process's loading child while it runs (/proc)."""
    me = str(os.getpid())
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[1] != me or b"sandbox_child" not in (proc / "cmdline").read_bytes():
                    continue
                seen["environ"] = (proc / "environ").read_bytes().decode(errors="replace")
                seen["limits"] = (proc / "limits").read_text()
            except (OSError, IndexError):
                continue
        time.sleep(0.05)


def test_the_loading_child_sees_no_credentials_and_runs_under_limits(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from shears.keras.tfcompat import keras

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    path = tmp_path / "m.keras"
    model.save(path)
    seen: dict[str, str] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_children, args=(seen, stop), daemon=True)
    watcher.start()
    try:
        loaded = load_in_child(path.read_bytes(), "m.keras", np.zeros((2, 4), np.float32))
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert loaded.generation == "keras2" and [w.shape for w in loaded.weights] == [(4, 3), (3,)]
    assert "environ" in seen, "the child was never seen"
    env = dict(item.split("=", 1) for item in seen["environ"].split("\0") if "=" in item)
    assert not set(SECRETS) & set(env), sorted(set(SECRETS) & set(env))
    assert env["HOME"].startswith(os.environ.get("TMPDIR", "/tmp").rstrip("/")) or "shears-load-" in env["HOME"]
    limits = {line[:26].strip(): line[26:].split() for line in seen["limits"].splitlines()[1:]}
    assert limits["Max address space"][0] == str(8 << 30)
    assert limits["Max cpu time"][0] == "300" and limits["Max open files"][0] == "1024"
    assert limits["Max core file size"][0] == "0"
    assert loaded.seconds > 0 and loaded.peak_rss_bytes > 0


def test_a_child_that_takes_too_long_is_killed_with_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^cannot load model m\.keras: loading took longer than 1 s: refused$"):
        load_in_child(_model(), "m.keras", limits=SandboxLimits(wall_seconds=1.0))


def test_a_child_out_of_address_space_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        load_in_child(_model(), "m.keras", limits=SandboxLimits(address_space_bytes=256 << 20))
    msg = str(exc.value)
    assert msg.startswith("cannot load model m.keras: ") and "\n" not in msg and len(msg) <= 300, msg


def test_the_child_checks_the_file_again_with_its_own_limits() -> None:
    with pytest.raises(ConfigError, match="its datasets hold more than 10 bytes"):
        load_in_child(_model(), "m.keras", limits=SandboxLimits(intake=Limits(weight_bytes=10)))
