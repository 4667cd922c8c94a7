"""Publishing a folder: every file first, the manifest last (a folder without one is incomplete).

Works on any Store (local directory or S3). Promotion to champion is shears.release.champion.
"""

from __future__ import annotations

from shears.errors import RecordError, StoreError
from shears.records import ManifestRecord
from shears.store import Store
from shears.store import layout as L


def publish_files(store: Store, layout: L.RunLayout, area: L.Area, files: dict[str, bytes],
                  manifest: ManifestRecord) -> None:
    """Upload every file, then the manifest last (its presence marks the folder complete).

    Idempotent: a folder already published with exactly these files is left alone (a retried publish
    must not rewrite a manifest champion.json may pin by sha256). Objects left by an interrupted
    earlier attempt that are not part of this publication are removed before the manifest is written.
    """
    prefix = layout.prefix(area)
    manifest_key = layout.key(area, L.MANIFEST)
    if store.exists(manifest_key):
        try:
            old: ManifestRecord | None = ManifestRecord.from_bytes(store.get(manifest_key), manifest_key)
        except RecordError:
            old = None
        if old is not None and old.files == manifest.files:
            return
        if area == "runs":
            raise StoreError(
                f"{prefix} in {store.uri} is already published with different content; use a new run id"
            )
        store.delete_prefix(manifest_key)  # superseded record: drop the old manifest before rewriting
    for key in store.list(prefix + "/"):
        name = key[len(prefix) + 1 :]
        if name not in files and name != L.MANIFEST:
            store.delete_prefix(key)
    for name in sorted(files):
        store.put(layout.key(area, name), files[name])
    store.put(manifest_key, manifest.to_bytes())
