"""What every step of a run needs: where staging lives, where results go, the run's keys and its config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shears.config import PipelineConfig
from shears.policy import Policy
from shears.records import Record
from shears.store import Store
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import SigningKey

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class RunContext:
    """A run's staging area (`work`), its artifact store, its keys and the config it resolved at start.

    In Airflow `work` and `store` are the same store (tasks of a run may run on different workers); the
    CLI stages in a local temporary directory when publishing to S3.
    """

    work: Store
    store: Store
    layout: L.RunLayout
    cfg: PipelineConfig
    s3_client: Callable[[], Any] | None = None  # builds the client for s3:// inputs (the DAG's connection)
    # names written to staging through this context, in order: each step records its own (its outputs)
    written: list[str] = field(default_factory=list, compare=False, repr=False)
    # loads the private signing key at the edge (a file in the CLI, a connection in the DAG); None: unsigned
    signing_key: Callable[[], SigningKey | None] | None = None
    # the deployment's gate floors (read at the edge: $SHEARS_POLICY); `cfg` already obeys them
    policy: Policy = field(default_factory=Policy)
    # trials that run at once (the CLI's --jobs, the DAG's TensorFlow workers): the search budgets rounds by it
    jobs: int = 1
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        return self.layout.run_id

    def signer(self) -> SigningKey | None:
        """The signing key (loaded once per process), or None when runs are not signed."""
        if "key" not in self._loaded:
            self._loaded["key"] = self.signing_key() if self.signing_key is not None else None
        key: SigningKey | None = self._loaded["key"]
        return key

    def put(self, name: str, data: bytes) -> str:
        key = self.layout.staging(name)
        self.work.put(key, data)
        if name not in self.written:  # a file staged twice (config.json, resolved at validate) is one output
            self.written.append(name)
        return key

    def get(self, name: str) -> bytes:
        return self.work.get(self.layout.staging(name))

    def has(self, name: str) -> bool:
        return self.work.exists(self.layout.staging(name))

    def list(self, prefix: str) -> list[str]:
        """The staged names under `prefix` (relative to the run's staging, like every name here)."""
        base = self.layout.staging_prefix + "/"
        return [key[len(base):] for key in self.work.list(self.layout.staging(prefix))]

    def put_record(self, record: Record, name: str | None = None) -> str:
        return self.put(name or record.FILE, record.to_bytes())

    def get_record(self, model: type[R], name: str | None = None) -> R:
        name = name or model.FILE
        return model.from_bytes(self.get(name), self.layout.staging(name))
