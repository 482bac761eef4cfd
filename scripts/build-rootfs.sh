#!/usr/bin/env bash
# Builds lookout's embedded default image: a busybox root filesystem made from
# Debian's busybox-static, as a directory and as a rootfs tarball.
#   scripts/build-rootfs.sh [OUT_DIR]   (default: build/rootfs)
# Produces OUT_DIR/busybox/ (the tree) and OUT_DIR/busybox.tar.
set -euo pipefail
out=${1:-build/rootfs}
bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
  for c in /bin/busybox /usr/bin/busybox; do
    if [ -x "$c" ] && file -L "$c" 2>/dev/null | grep -q 'statically linked'; then bb=$c; fi
  done
fi
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
  echo "build-rootfs: a static busybox is needed: apt-get install busybox-static" >&2
  exit 1
fi
root=$out/busybox
tmp=$out/.busybox.tmp
rm -rf "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,home,var/log,run}
chmod 1777 "$tmp/tmp"
cp "$bb" "$tmp/bin/busybox"
chmod 0755 "$tmp/bin/busybox"
# One link per applet, where busybox says it belongs.
"$tmp/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$tmp/$(dirname "$applet")"
  ln -sf /bin/busybox "$tmp/$applet"
done
cat > "$tmp/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
PASSWD
cat > "$tmp/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:app
audio:x:29:app
nogroup:x:65534:
app:x:1000:
GROUP
mkdir -p "$tmp/home/app" && chown 1000:1000 "$tmp/home/app" 2>/dev/null || true
: > "$tmp/etc/hostname"
: > "$tmp/etc/hosts"
: > "$tmp/etc/resolv.conf"
rm -rf "$root"
mv "$tmp" "$root"
tar --numeric-owner -C "$root" -cf "$out/busybox.tar" .
echo "rootfs: $root ($(du -sh "$root" | cut -f1)), tarball: $out/busybox.tar"
