"""S3 (or any S3-compatible server) as a Shears artifact store. The only module that imports boto3.

Credentials and endpoint come from the standard AWS chain (env, profile, instance role;
AWS_ENDPOINT_URL for S3-compatible servers) unless a ready client is passed in (the Airflow DAG
passes `S3Hook(...).get_conn()`, ideally built with `client_config()` so retries stay bounded).

Every botocore failure becomes one StoreError line naming the operation, bucket and endpoint; lost
conditional writes (HTTP 412/409) become PreconditionFailed. Credentials never appear in a message.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from shears.errors import ConfigError, StoreError, first_line
from shears.store.base import CHUNK_BYTES, ObjectInfo, PreconditionFailed, check_key

MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 4  # total tries per request, first one included
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0

_DENIED = {
    "403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity",
}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


def client_config(max_attempts: int | None = None) -> Config:
    """Bounded standard-mode retries and connect/read timeouts (pass it to Airflow's S3Hook too)."""
    attempts = max_attempts
    if attempts is None:
        raw = os.environ.get("AWS_MAX_ATTEMPTS") or str(DEFAULT_MAX_ATTEMPTS)
        try:
            attempts = int(raw)
        except ValueError:
            raise ConfigError(f"AWS_MAX_ATTEMPTS must be an integer, got {raw!r}") from None
    return Config(
        retries={"mode": "standard", "total_max_attempts": max(1, attempts)},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        tcp_keepalive=True,
    )


def make_client(max_attempts: int | None = None) -> Any:
    """An S3 client from the standard AWS chain; AWS_ENDPOINT_URL(_S3) selects an S3-compatible server."""
    try:
        return boto3.session.Session().client("s3", config=client_config(max_attempts))
    except BotoCoreError as exc:
        raise StoreError(f"cannot create an S3 client: {_describe(exc)}") from None


def _safe_url(url: str | None) -> str:
    """The endpoint without any user:password@ part."""
    if not url:
        return "the default AWS endpoint"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class S3Store:
    """A bucket + prefix as an artifact store, implementing shears.store.Store."""

    def __init__(self, bucket: str, prefix: str = "", client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else make_client()
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint = _safe_url(getattr(self.client.meta, "endpoint_url", None))
        self._versioned: bool | None = None
        self._bucket_seen = False
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                        multipart_chunksize=MULTIPART_CHUNKSIZE, max_concurrency=4)

    # -- keys ---------------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _dir(self, prefix: str) -> str:
        """A listing prefix with directory semantics ('runs/a' lists runs/a/..., never runs/ab/...)."""
        clean = prefix.strip("/")
        if not clean:
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(clean) + "/"

    # -- errors -------------------------------------------------------------------------------------
    def _attempts(self) -> str:
        retries = getattr(self.client.meta.config, "retries", None) or {}
        total = retries.get("total_max_attempts") or (
            retries["max_attempts"] + 1 if isinstance(retries.get("max_attempts"), int) else None)
        return f" after {total} attempts" if total else ""

    def _scrub(self, text: str) -> str:
        """Remove the client's own credentials from a message, should a library ever echo them."""
        try:
            creds = self.client._get_credentials()
        except Exception:  # scrubbing must never break the error path
            creds = None
        for secret in (getattr(creds, "secret_key", None), getattr(creds, "access_key", None),
                       getattr(creds, "token", None)):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _error(self, exc: Exception, op: str, key: str | None = None) -> StoreError:
        """One line naming what failed, the bucket and the endpoint; never the credentials."""
        where = f"bucket {self.bucket} at {self.endpoint}"
        what = f"{op} {key}" if key else op
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
            exc = exc.__context__
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
            if code in _PRECONDITION:
                name = self._rel(key) if key else op
                msg = f"{name} in {self.uri} changed since it was read ({code})"
                return PreconditionFailed(self._scrub(msg))
            if code in _DENIED:
                return StoreError(self._scrub(f"S3 access denied for {where}: {code}"))
            if code == "NoSuchBucket":
                return StoreError(self._scrub(f"S3 bucket {self.bucket} does not exist at {self.endpoint}"))
            if code in _NOT_FOUND and key:
                return StoreError(self._scrub(f"not found in store {self.uri}: {self._rel(key)}"))
            detail = first_line(str(err.get("Message") or ""))
            return StoreError(self._scrub(f"S3 {what} failed for {where}: {code} {detail}".rstrip()))
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreError(f"no usable AWS credentials for {where}: set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        if isinstance(exc, ReadTimeoutError):
            return StoreError(f"S3 {what} timed out{self._attempts()} for {where}")
        if isinstance(exc, ConnectionError):
            return StoreError(f"S3 endpoint {self.endpoint} unreachable{self._attempts()} for bucket "
                              f"{self.bucket} ({op}): {type(exc).__name__}")
        return StoreError(self._scrub(f"S3 {what} failed for {where}: {_describe(exc)}"))

    def _denied_detail(self, exc: ClientError, op: str, key: str) -> StoreError:
        """HEAD answers a bare 403 (no body); ask once with a listing call to name the real cause."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        except (ClientError, BotoCoreError) as probe:
            return self._error(probe, op, key)
        return self._error(exc, op, key)

    # -- Store protocol -----------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        try:
            if len(data) > MULTIPART_THRESHOLD:
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, full,
                                           ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=self._transfer)
            else:
                self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ChecksumAlgorithm="SHA256",
                                       ChecksumSHA256=_b64_sha256(data))
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, "put", full) from None

    def get(self, key: str) -> bytes:
        full = self._key(key)
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
            return bytes(resp["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "get", full) from None

    def iter_bytes(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object in chunks of at most `chunk_size` bytes: a reader never holds more than one chunk."""
        full = self._key(key)
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
            body = resp["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "get", full) from None

    def head(self, key: str) -> ObjectInfo | None:
        full = self._key(key)
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _NOT_FOUND:
                self._check_bucket()
                return None
            if code in ("403", "Forbidden"):
                raise self._denied_detail(exc, "head", full) from None
            raise self._error(exc, "head", full) from None
        except BotoCoreError as exc:
            raise self._error(exc, "head", full) from None
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=str(resp["ETag"]))

    def _check_bucket(self) -> None:
        """A HEAD 404 cannot tell a missing key from a missing bucket; ask once so typos fail fast."""
        if self._bucket_seen:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _NOT_FOUND or code == "NoSuchBucket":
                raise StoreError(f"S3 bucket {self.bucket} does not exist at {self.endpoint}") from None
            if code in ("403", "Forbidden"):
                raise self._denied_detail(exc, "head bucket", self._dir("")) from None
            raise self._error(exc, "head bucket") from None
        except BotoCoreError as exc:
            raise self._error(exc, "head bucket") from None
        self._bucket_seen = True

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def _list_full(self, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                out.extend(str(obj["Key"]) for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "list", prefix or "/") from None
        return out

    def delete_prefix(self, prefix: str) -> None:
        clean = prefix.strip("/")
        check_key(clean)
        keys = self._list_full(self._dir(clean))
        if self.exists(clean):
            keys.append(self._key(clean))
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            try:
                resp = self.client.delete_objects(Bucket=self.bucket,
                                                  Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, "delete", clean) from None
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise StoreError(f"S3 delete of {first.get('Key')} failed for bucket {self.bucket} at "
                                 f"{self.endpoint}: {first.get('Code')} ({len(errors)} not deleted)")

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        """S3 conditional write (If-Match etag / If-None-Match '*'); 412/409 raise PreconditionFailed."""
        full = self._key(key)
        cond: dict[str, str] = {}
        if if_none_match:
            cond["IfNoneMatch"] = "*"
        if if_match is not None:
            cond["IfMatch"] = if_match
        try:
            resp = self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ChecksumAlgorithm="SHA256",
                                          ChecksumSHA256=_b64_sha256(data), **cond)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "conditional put", full) from None
        return str(resp["ETag"])

    def delete_if(self, key: str, *, if_match: str) -> None:
        """S3 conditional delete (DeleteObject If-Match); 412 (changed or gone) raises PreconditionFailed."""
        full = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full, IfMatch=if_match)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:  # AWS answers 404 for a gone key
                raise PreconditionFailed(self._scrub(f"{key} is not in {self.uri}")) from None
            raise self._error(exc, "conditional delete", full) from None
        except BotoCoreError as exc:
            raise self._error(exc, "conditional delete", full) from None

    def is_versioned(self) -> bool:
        if self._versioned is None:
            try:
                status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, "get versioning") from None
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned

    def versions(self, key: str) -> list[str]:
        """Version ids of `key`, oldest first, without delete markers; ['current'] if unversioned."""
        full = self._key(key)
        if not self.is_versioned():
            return ["current"] if self.exists(key) else []
        listed: list[dict[str, Any]] = []
        try:
            paginator = self.client.get_paginator("list_object_versions")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                listed.extend(v for v in page.get("Versions", []) if v["Key"] == full)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "list versions", full) from None
        return _oldest_first(listed)

    def list(self, prefix: str) -> list[str]:  # last: the name shadows the builtin inside the class
        return sorted(self._rel(k) for k in self._list_full(self._dir(prefix)) if not k.endswith("/"))


def _oldest_first(listed: list[dict[str, Any]]) -> list[str]:
    """S3 lists versions newest first; order by (latest last, modification time, listing position)."""
    ranked = [
        (bool(v.get("IsLatest")), v["LastModified"].timestamp() if v.get("LastModified") else 0.0, -i,
         str(v["VersionId"]))
        for i, v in enumerate(listed)
    ]
    return [vid for *_, vid in sorted(ranked)]


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {first_line(str(exc))}"


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()
