"""Publishing a folder: every file first, then the signature (when signing), the manifest last.

Works on any Store (local directory or S3). Promotion to champion is shears.release.champion.

Order: files → model.sig → manifest.json. The signature covers every file *and* the manifest's bytes
(known before anything is uploaded), so it can be written before the manifest, and "no manifest =
incomplete" stays true: a folder interrupted before its manifest is incomplete whether or not its
signature landed, and every folder with a manifest that declares a signature already has it. Writing
the signature after the manifest would leave, after a crash, a complete-looking run whose declared
signature is missing — indistinguishable from a stripped signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shears.errors import ConflictError, RecordError
from shears.records import ManifestRecord
from shears.store import Store
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import SigningKey


def publish_files(store: Store, layout: L.RunLayout, area: L.Area, files: dict[str, bytes],
                  manifest: ManifestRecord, key: SigningKey | None = None) -> None:
    """Upload every file, then the signature (with `key`), then the manifest last (it marks the folder complete).

    With `key`, the manifest must declare the signature (ManifestRecord.signature, same key id): the
    declaration is part of what is signed.

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
            raise ConflictError(
                f"{prefix} in {store.uri} is already published with different content; use a new run id"
            )
        store.delete_prefix(manifest_key)  # superseded record: drop the old manifest before rewriting
    declared = manifest.signature
    if (key is None) != (declared is None) or (key and declared and key.key_id != declared.key_id):
        raise ValueError("the manifest's signature declaration does not match the signing key")
    manifest_bytes = manifest.to_bytes()
    signature = None
    if key is not None:
        from shears.release.signing import sign_files

        signature = sign_files(layout.run_id, {**files, L.MANIFEST: manifest_bytes}, key)
    for old_key in store.list(prefix + "/"):
        name = old_key[len(prefix) + 1 :]
        if name not in files and name != L.MANIFEST and not (signature and name == L.SIGNATURE):
            store.delete_prefix(old_key)
    for name in sorted(files):
        store.put(layout.key(area, name), files[name])
    if signature is not None:
        store.put(layout.key(area, L.SIGNATURE), signature)
    store.put(manifest_key, manifest_bytes)
