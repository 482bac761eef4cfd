#!/usr/bin/env bash
# Runs lookout's whole test suite (as root: the tests make namespaces,
# cgroups and mounts of their own and remove them). Installs nothing: run
# scripts/setup.sh once on a fresh machine first (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/rootfs/busybox.tar ] || scripts/build-rootfs.sh
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- --test-threads=4
