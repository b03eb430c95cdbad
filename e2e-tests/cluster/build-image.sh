#!/usr/bin/env bash
# build-image.sh TAG [ARCHIVE]: build docker/Dockerfile as localhost/turnforge/turnforge:TAG without a Docker engine,
# and write it to ARCHIVE if given (an OCI archive, for `ctr images import` on a real node; compressing it takes
# about 30 s).
#
# - The base image is Debian bookworm's own Python (3.11, as python:3.11-slim), made by mmdebstrap from the Debian
#   mirror (no registry needed) and cached as a tarball in $CACHE/images; `podman import` turns it into an image.
# - buildah builds with chroot isolation (no daemon, no user namespaces) and --layers, so the dependency layers of
#   docker/Dockerfile are reused until pyproject.toml changes.
# - pip inside the build goes through this machine's TLS-intercepting proxy: the host's CA bundle and pip
#   configuration are mounted read-only into every RUN step.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:?usage: build-image.sh TAG [ARCHIVE]}
ARCHIVE=${2:-}
CACHE=${TURNFORGE_CACHE:-$HOME/.cache/turnforge}
BASE=localhost/turnforge-base:bookworm
BASE_TAR=$CACHE/images/debian-bookworm-python3.tar
IMAGE=localhost/turnforge/turnforge:$TAG

for tool in mmdebstrap podman buildah; do
  command -v "$tool" > /dev/null || {
    echo "build-image.sh needs $tool: apt-get install buildah podman runc mmdebstrap" >&2; exit 3; }
done

if [ ! -f "$BASE_TAR" ]; then
  echo "base rootfs: mmdebstrap bookworm (about a minute, once) ..."
  mkdir -p "$(dirname "$BASE_TAR")"
  # passwd: the Dockerfile's runtime stage adds its user with useradd, which minbase lacks.
  nice -n 19 ionice -c3 mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
    bookworm "$BASE_TAR.part.tar"  # mmdebstrap picks the format from the name: .tar
  mv "$BASE_TAR.part.tar" "$BASE_TAR"
fi
if ! podman image exists "$BASE"; then
  podman import --quiet "$BASE_TAR" "$BASE" > /dev/null
fi

mounts=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[ -f /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
nice -n 19 ionice -c3 buildah bud --quiet --isolation chroot --layers \
  --build-arg "PYTHON_IMAGE=$BASE" "${mounts[@]}" \
  -f docker/Dockerfile -t "$IMAGE" . > /dev/null
if [ -n "$ARCHIVE" ]; then
  rm -f "$ARCHIVE"
  buildah push --quiet "$IMAGE" "oci-archive:$ARCHIVE:$IMAGE"
fi
echo "$IMAGE"
