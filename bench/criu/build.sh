#!/bin/sh
# Builds CRIU 4.1.1, the benchmark's anchor, from Debian trixie's source
# package. Debian 12's own criu (3.17) cannot dump on this kernel: Linux 6.13
# split [vvar] from [vvar_vclock] and only CRIU 4.1 knows that layout.
#
# The source comes through apt-get with a private sources list and a private
# state directory, so the system's apt configuration and package lists are
# never touched; the build dependencies come from Debian 12 itself. The build
# lives out of the tree under $ROAM_BENCH_CACHE (default /var/cache/roam-bench)
# so a freshly laid work tree does not rebuild it. Idempotent: prints the
# path of a working criu and exits when one is already there.
#
#   bench/criu/build.sh            build if needed, print the criu binary path
#   bench/criu/build.sh --force    rebuild
set -eu

VERSION=4.1.1
CACHE=${ROAM_BENCH_CACHE:-/var/cache/roam-bench}
APTDIR=$CACHE/apt
SRCROOT=$CACHE/criu-src
PREFIX=$CACHE/criu
CRIU=$PREFIX/sbin/criu
LOG=$CACHE/criu-build.log

say() { echo "criu-build: $*" >&2; }
die() { say "$*"; exit 1; }

if [ "${1:-}" != "--force" ] && [ -x "$CRIU" ] && [ -x "$PREFIX/bin/crit" ] && "$CRIU" --version 2>/dev/null | grep -q "Version: $VERSION"; then
	echo "$CRIU"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "needs root (apt-get, and CRIU itself)"
mkdir -p "$CACHE"
: > "$LOG"

# Build dependencies, all from Debian 12 (no documentation: no asciidoc or
# xmlto): scripts/deps.sh --bench lists them with the benchmarks' others.
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/deps.sh" --bench || die "could not install the build dependencies"

# The mirror is whatever this machine's apt already uses for Debian.
MIRROR=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	/etc/apt/sources.list.d/*.sources 2>/dev/null |
	grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt"

# Private apt: own sources list, own lists/cache, no sources.list.d parts.
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" \
	> "$APTDIR/sources.list"
set -- -o Dir::Etc::sourcelist="$APTDIR/sources.list" \
	-o Dir::Etc::sourceparts=/nonexistent \
	-o Dir::State::Lists="$APTDIR/lists" \
	-o Dir::Cache="$APTDIR/cache" \
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
	-o APT::Get::List-Cleanup=false -o Debug::NoLocking=true
say "fetching the trixie source index (private apt state in $APTDIR)"
apt-get "$@" -qq update
srcver=$(apt-cache "$@" showsrc criu | awk '/^Version:/ {print $2; exit}')
case "$srcver" in
"$VERSION"-*) ;;
*) die "trixie's criu is '$srcver', expected $VERSION-*" ;;
esac

rm -rf "$SRCROOT"
mkdir -p "$SRCROOT"
say "apt-get source criu=$srcver"
if (cd "$SRCROOT" && apt-get "$@" -qq source "criu=$srcver") >>"$LOG" 2>&1; then
	src=$(find "$SRCROOT" -maxdepth 1 -type d -name "criu-$VERSION*" | head -n1)
else
	# This workplace's mirror serves the upstream part of the source package
	# (criu_$VERSION.orig.tar.xz) but not always the .dsc and Debian's
	# packaging tarball. apt-get fetched and hash-checked what it could; check
	# the orig tarball again against the signed Sources index and build from
	# it (Debian's patches touch only packaging for 4.1.1).
	orig=$SRCROOT/criu_$VERSION.orig.tar.xz
	[ -f "$orig" ] || die "apt-get source failed and no orig tarball (see $LOG)"
	want=$(apt-cache "$@" showsrc criu |
		awk '/^Checksums-Sha256:/ {f=1; next} /^[^ ]/ {f=0} f && $3 ~ /orig.tar/ {print $1; exit}')
	got=$(sha256sum "$orig" | cut -d' ' -f1)
	[ -n "$want" ] && [ "$want" = "$got" ] || die "orig tarball sha256 $got does not match Sources ($want)"
	say "mirror lacks the .dsc: building from the verified orig tarball (sha256 $got)"
	tar -C "$SRCROOT" -xf "$orig"
	src=$(find "$SRCROOT" -maxdepth 1 -type d -name "criu-$VERSION*" | head -n1)
	if [ -f "$SRCROOT/criu_$srcver.debian.tar.xz" ]; then
		tar -C "$src" -xf "$SRCROOT/criu_$srcver.debian.tar.xz"
		for p in $(grep -v '^#' "$src/debian/patches/series" 2>/dev/null); do
			patch -d "$src" -p1 -s < "$src/debian/patches/$p" || die "patch $p"
		done
	fi
fi
[ -d "${src:-}" ] || die "no unpacked source under $SRCROOT"

# Build: plain make (Debian's patches are already applied by dpkg-source),
# no docs, installed into $PREFIX.
say "building in $src (log: $LOG)"
jobs=$(nproc 2>/dev/null || echo 2)
(cd "$src" && make -j"$jobs" V=0 criu crit >>"$LOG" 2>&1 &&
	make install-criu PREFIX="$PREFIX" SBINDIR="$PREFIX/sbin" \
		LIBDIR="$PREFIX/lib" MANDIR="$PREFIX/man" >>"$LOG" 2>&1) ||
	die "build failed (tail of $LOG:)$(tail -n 20 "$LOG")"
# crit's own install goes through pip, which cannot reach its index here:
# run it from the source tree with Debian's python3 and python3-protobuf.
mkdir -p "$PREFIX/bin"
cat > "$PREFIX/bin/crit" <<WRAP
#!/bin/sh
PYTHONPATH="$src/lib:$src/crit" exec /usr/bin/python3 -m crit "\$@"
WRAP
chmod +x "$PREFIX/bin/crit"
[ -x "$CRIU" ] || die "no $CRIU after install"

if ! "$CRIU" check >>"$LOG" 2>&1; then
	die "criu check fails on this kernel (see $LOG)"
fi
say "criu $VERSION ready: $CRIU"
echo "$CRIU"
