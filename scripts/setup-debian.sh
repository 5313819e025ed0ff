#!/bin/sh
# Installs what querylog needs on Debian 12, from Debian's own packages.
# Idempotent: installs only what is missing. Run as root.
#   scripts/setup-debian.sh          build + test dependencies
#   scripts/setup-debian.sh --bench  also the benchmark peers (SQLite, RocksDB, gnuplot)
#                                    and what bench/analysis/ runs (python3, zstd)
set -eu
pkgs="build-essential meson ninja-build pkg-config
      liblmdb-dev libzstd-dev libxxhash-dev libjansson-dev libcmocka-dev
      clang libclang-rt-14-dev"
if [ "${1:-}" = "--bench" ]; then
	pkgs="$pkgs libsqlite3-dev librocksdb-dev gnuplot-nox python3 zstd"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
