#!/usr/bin/env python3
"""Write docker/.env for docker/compose.yaml: fresh random secrets plus the documented defaults. Stdlib only.

    python3 docker/make_env.py            # writes docker/.env (mode 600); refuses to overwrite an existing one
    python3 docker/make_env.py --force    # new secrets (the database/S3 volumes keep the old ones: see README.md,
                                          # "Deploy" > "Configuration and secrets")
    python3 docker/make_env.py -o FILE    # somewhere else (then: docker compose --env-file FILE ...)

docker/.env is git-ignored (docker/.gitignore). compose.yaml has no default for any secret: it refuses to start
(`${VAR:?...}`) until they are set.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

SECRETS = {
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "S3_ACCESS_KEY": lambda: "SHEARS" + secrets.token_hex(8).upper(),
    "S3_SECRET_KEY": lambda: secrets.token_urlsafe(30),
    "AIRFLOW_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(16),
    "AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(64),
    "AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(32),
}

# Not secret; compose.yaml has the same defaults (`${VAR:-default}`). Listed so that they are easy to change.
DEFAULTS = {
    "AIRFLOW_ADMIN_USER": "admin",
    "AIRFLOW_PORT": "8080",
    "S3_PORT": "8333",
    "SHEARS_BUCKET": "shears",
    "SHEARS_PREFIX": "prod",
    "SHEARS_TF_QUEUE": "tensorflow",
    "SHEARS_TF_POOL": "shears_training",
    "SHEARS_TF_POOL_SLOTS": "1",
    "AIRFLOW_WORKER_CONCURRENCY": "4",
    "SHEARS_TF_WORKER_CONCURRENCY": "1",
}

HEADER = """\
# docker/compose.yaml settings, written by docker/make_env.py. LOCAL SECRETS: never commit this file.
# Secrets (random; no defaults in compose.yaml). Changing POSTGRES_PASSWORD or S3_* after the first start needs
# the volumes recreated (docker compose down -v) or the password changed inside the service as well.
"""


def render() -> str:
    lines = [HEADER]
    lines += [f"{name}={make()}" for name, make in SECRETS.items()]
    lines.append("\n# Defaults (the same as in compose.yaml)")
    lines += [f"{name}={value}" for name, value in DEFAULTS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parent / ".env")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    out: Path = args.output
    if out.exists() and not args.force:
        print(f"make_env: {out} exists; keep it, or pass --force for new secrets", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(render())
    os.chmod(out, 0o600)
    print(f"make_env: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
