#!/bin/sh
# Installs the Debian 12 packages roam builds, tests and benchmarks with,
# when they are missing. Idempotent; needs root only when something is missing.
set -eu
PKGS="make gcc clang libclang-rt-14-dev protobuf-c-compiler libprotobuf-c-dev \
libsodium-dev libgcrypt20-dev libssl-dev liblz4-dev libzstd-dev libxxhash-dev libcmocka-dev libcap-dev \
iproute2 nftables python3 bc sqlite3 nodejs coreutils util-linux procps passwd gnuplot-nox"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS hyperfine openssh-server openssh-client dpkg-dev \
build-essential pkg-config python3-protobuf python3-yaml libprotobuf-dev protobuf-compiler \
libnl-3-dev libnl-route-3-dev libnet1-dev libaio-dev libbsd-dev libgnutls28-dev \
libnftables-dev libdrm-dev uuid-dev kmod"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "roam: installing Debian packages:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "roam: not root; install them with: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
