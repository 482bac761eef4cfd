#!/usr/bin/env bash
# The shim must stay small: no HTTP server, TLS or tar crate in its tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree -p lookout-shim -e normal --prefix none | awk '{print $1}' | sort -u)
bad=$(printf '%s\n' "$tree" | grep -E '^(hyper|axum|h2|tower|tower-http|warp|actix-web|rustls|native-tls|openssl|tokio-rustls|tar|bollard)$' || true)
if [ -n "$bad" ]; then
  echo "lookout-shim must not depend on: $bad" >&2
  exit 1
fi
echo "lookout-shim dependency check: ok ($(printf '%s\n' "$tree" | wc -l) crates)"
