#!/usr/bin/env bash
# Installs what lookout's build and tests need on a fresh Debian machine
# (root), and builds the embedded busybox image.
set -euo pipefail
cd "$(dirname "$0")/.."
need=(busybox-static gzip file procps util-linux gcc g++)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The API tests drive lookoutd with the docker CLI (28 on this machine kind)
# and docker-py.
if ! command -v docker >/dev/null; then
  echo "setup: the docker CLI is missing; installing Debian's docker.io for its client" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the package from starting an engine.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends docker.io || true
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
python3 -c 'import docker' 2>/dev/null || python3 -m pip install -q 'docker==7.1.0'
scripts/build-rootfs.sh
