#!/usr/bin/env bash
# lookout's main job, end to end on this machine: build, start lookoutd on a
# socket of its own, import the embedded busybox root as an image, run a
# container with the json-file log driver, and show its logs and stats —
# with lookout's CLI and with the unchanged docker CLI. Everything it makes
# (data root, socket, cgroups, mounts, the daemon) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/rootfs/busybox.tar ] || scripts/build-rootfs.sh
cargo build --release -p lookoutd -p lookout-shim -p lookout-cli -p lookout-plugin-json-file
bin=target/release
work=$(mktemp -d /tmp/lookout-demo.XXXXXX)
sock=$work/lookout.sock
export LOOKOUT_HOST=unix://$sock
daemon=
cleanup() {
  set +e
  if [ -n "$daemon" ]; then
    for c in $($bin/lookout ps -aq 2>/dev/null); do $bin/lookout rm -f "$c" >/dev/null; done
    kill "$daemon"; wait "$daemon" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== lookoutd -H unix://$sock --data-root $work/root"
$bin/lookoutd -H "unix://$sock" --data-root "$work/root" --cgroup-parent /lookout-demo \
  2>"$work/lookoutd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$work/lookoutd.log" >&2; exit 1; }
$bin/lookout version
echo
echo "== import the busybox root as an image"
$bin/lookout import -c 'CMD ["sh"]' build/rootfs/busybox.tar busybox:demo
$bin/lookout images
echo
echo "== run -d with json-file (max-size=1k, max-file=3), -m 64m, --cpus 0.5, --pids-limit 50"
$bin/lookout run -d --name demo --log-driver json-file --log-opt max-size=1k --log-opt max-file=3 \
  -m 64m --cpus 0.5 --pids-limit 50 busybox:demo \
  sh -c 'echo "I am PID $$ on $(hostname)"; echo "interfaces: $(ls /sys/class/net)";
         i=0; while true; do i=$((i+1)); echo "tick $i"; [ $((i % 5)) = 0 ] && echo "five more" >&2; sleep 0.1; done'
sleep 2
echo
echo "== ps (the docker CLI, unchanged, on the same socket)"
docker -H "unix://$sock" ps
echo
echo "== logs --tail 6 -t"
$bin/lookout logs --tail 6 -t demo
echo
echo "== stats --no-stream"
$bin/lookout stats --no-stream demo
echo
echo "== inspect"
$bin/lookout inspect -f '{{.Name}} running={{.State.Running}} pid={{.State.Pid}} log={{.LogPath}}' demo
echo
echo "== the log files (rotated at 1 kB, three kept), as Docker writes them"
ls -l "$(dirname "$($bin/lookout inspect -f '{{.LogPath}}' demo)")" | grep json.log
echo
echo "== stop -t 1 (busybox sh as PID 1 ignores SIGTERM: SIGKILL after 1 s), rm"
$bin/lookout stop -t 1 demo
$bin/lookout ps -a
$bin/lookout rm demo
