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
scripts/build-rootfs.sh
