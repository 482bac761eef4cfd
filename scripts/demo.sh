#!/usr/bin/env bash
# lookout's main job, end to end on this machine: build, run a container on
# the embedded busybox root through its own shim (no daemon), its output
# going through the log pipeline into the json-file driver; show what was
# written, read it back with the reader, and show the cgroup's limits.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/rootfs/busybox/bin/busybox ] || scripts/build-rootfs.sh
cargo build --release -p lookout-shim -p lookout-plugin-json-file
shim=target/release/lookout-shim
root=$(mktemp -d /tmp/lookout-demo.XXXXXX)
trap 'rm -rf "$root"' EXIT
id=demo$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "== run: a busybox container, json-file (max-size=1k, max-file=3), -m 64m, --cpus 0.5, --pids-limit 50"
set +e
$shim run --rootfs build/rootfs/busybox --root "$root" --id "$id" --name demo \
  --plugin-dir target/release -m 64m --cpus 0.5 --pids-limit 50 \
  --log-driver json-file --log-opt max-size=1k --log-opt max-file=3 \
  --log-opt 'tag={{.Name}}/{{.ID}}' -- \
  sh -c 'echo "I am PID $$ on $(hostname), uid $(id -u)";
         echo "processes I can see: $(ls /proc | grep -c "^[0-9]")";
         echo "interfaces: $(ls /sys/class/net | tr "\n" " ")";
         echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)";
         i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo "stdout line $i"; done;
         echo "tab	<b>&\"quotes\""; echo "to stderr" >&2; printf "no newline"; exit 3'
echo "exit status: $?"
set -e
echo
echo "== state directory (rotated at 1 kB, three files kept; exit.json written after the flush)"
ls -l "$root/$id"
cat "$root/$id/exit.json"; echo
echo
echo "== the current log file, as Docker would have written it"
head -n 3 "$root/$id/$id-json.log"
echo
echo "== logs --tail 8 -t --details (the reader)"
$shim logs --id "$id" --log-dir "$root/$id" --tail 8 -t --details
