#!/usr/bin/env bash
# lookout's main job, end to end on this machine: build, run a command
# through the log pipeline into the json-file driver, show what was written,
# read it back with the reader, and print the pipeline's counters.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lookout-shim -p lookout-plugin-json-file
shim=target/release/lookout-shim
id=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
dir=$(mktemp -d /tmp/lookout-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
root=build/rootfs/busybox
sh=/bin/sh
[ -x "$root/bin/busybox" ] && sh="$root/bin/busybox sh"

echo "== run: json-file, max-size=1k, max-file=3, tag={{.ID}}; the command exits 3"
set +e
$shim run --id "$id" --log-dir "$dir" --plugin-dir target/release \
  --log-driver json-file --log-opt max-size=1k --log-opt max-file=3 \
  --log-opt 'tag={{.ID}}' --stats -- \
  $sh -c 'i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "stdout line $i"; done;
          echo "tab	<b>&\"quotes\"" ; echo "to stderr" >&2; printf "no newline"; exit 3'
echo "exit status: $?"
set -e
echo
echo "== files (rotated at 1 kB, three kept)"
ls -l "$dir"
echo
echo "== the current file, as Docker would have written it"
head -n 3 "$dir/$id-json.log"
echo
echo "== logs --tail 5 -t --details (the reader)"
$shim logs --id "$id" --log-dir "$dir" --tail 5 -t --details
echo
