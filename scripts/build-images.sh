#!/usr/bin/env bash
# Builds Airlock's two images as OCI image layouts, with no Docker daemon (umoci; see
# docs/deploy.md for pushing them with skopeo):
#
#   target/images/airlock         the approval service `airlock`: ENTRYPOINT airlock,
#                                 CMD serve, user 65532 (non-root), port 8700, volume
#                                 /var/lib/airlock (the SQLite store), no shell
#   target/images/airlock-filter  the proxy-wasm module as a Wasm OCI artifact, "compat"
#                                 variant (what Istio pulls: one tar+gzip layer holding
#                                 /plugin.wasm, manifest annotation
#                                 module.wasm.image/variant=compat)
#
# Both tagged with the crate version (and `latest`). Labels: org.opencontainers.image.*
# (version, revision = git commit, title, licenses, created = commit time).
#
# The service binary is dynamically linked against glibc (cargo's default target), so the
# image carries Debian's libc6 and libgcc-s1 (the binary's only NEEDED libraries besides
# the vDSO), unpacked from the packages of this machine's release, minus gconv; plus
# /etc/passwd and /etc/group with the `nonroot` user. No shell, no package manager.
#
# Usage: bash scripts/build-images.sh [--binary PATH] [--wasm PATH] [--out DIR] [--push REGISTRY]
#   --binary  the airlock binary to package (default: a release build,
#             `cargo build --release -p airlock-approval-svc`). The tests pass the debug
#             binary test.sh already built (stripped of its line tables on the way in),
#             so CI does not pay for a second, release, build.
#   --wasm    the module (default target/wasm32-wasip1/release/airlock_filter.opt.wasm,
#             built by `bash scripts/build-wasm.sh --no-fault` when absent)
#   --out     output directory (default target/images)
#   --push    also copy both images to REGISTRY/airlock and REGISTRY/airlock-filter with
#             skopeo (credentials: `skopeo login` / REGISTRY_AUTH_FILE)
#   --insecure-registry  push over plain HTTP / unverified TLS (a local test registry)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'build-images: %s\n' "$*"; }

BINARY=""
WASM=""
OUT="$ROOT/target/images"
PUSH=""
TLS_VERIFY=true
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY="$2"; shift 2 ;;
    --wasm) WASM="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --push) PUSH="$2"; shift 2 ;;
    --insecure-registry) TLS_VERIFY=false; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) say "unknown argument $1"; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  # umoci unpacks and repacks as root so that file owners in the layers are exact.
  say "run as root (umoci keeps file owners only when run as root)"
  exit 1
fi
bash scripts/setup-images.sh >/dev/null

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' approval-svc/Cargo.toml | head -1)"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- 2>/dev/null; then REVISION="$REVISION-dirty"; fi
CREATED="$(date -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)" +%Y-%m-%dT%H:%M:%SZ)"
LICENSE="$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -1)"

# --- inputs ---------------------------------------------------------------------------
if [ -z "$BINARY" ]; then
  say "cargo build --release -p airlock-approval-svc"
  cargo build --release --quiet -p airlock-approval-svc
  BINARY="$ROOT/target/release/airlock"
fi
[ -x "$BINARY" ] || { say "no executable at $BINARY"; exit 1; }
if [ -z "$WASM" ]; then
  WASM="$ROOT/target/wasm32-wasip1/release/airlock_filter.opt.wasm"
  [ -f "$WASM" ] || bash scripts/build-wasm.sh --no-fault
fi
[ -f "$WASM" ] || { say "no module at $WASM"; exit 1; }

mkdir -p "$OUT"
WORK="$(mktemp -d "$OUT/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- the runtime base: Debian's libc6 + libgcc-s1 ---------------------------------------
DEBS="$OUT/debs"
mkdir -p "$DEBS"
fetch_debs() {
  (cd "$DEBS" && apt-get download -q libc6 libgcc-s1 2>/dev/null >/dev/null)
}
if ! ls "$DEBS"/libc6_*.deb "$DEBS"/libgcc-s1_*.deb >/dev/null 2>&1; then
  if ! fetch_debs; then
    say "apt-get update (for apt-get download libc6 libgcc-s1)"
    env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    fetch_debs
  fi
fi
LIBC_DEB="$(ls "$DEBS"/libc6_*.deb | sort -V | tail -1)"
LIBGCC_DEB="$(ls "$DEBS"/libgcc-s1_*.deb | sort -V | tail -1)"

# --- image 1: the service ------------------------------------------------------------
svc="$OUT/airlock"
rm -rf "$svc"
umoci init --layout "$svc"
umoci new --image "$svc:$VERSION"
umoci unpack --image "$svc:$VERSION" "$WORK/svc"
rootfs="$WORK/svc/rootfs"
for deb in "$LIBC_DEB" "$LIBGCC_DEB"; do dpkg-deb -x "$deb" "$rootfs"; done
# Character-set conversion modules (iconv) and lintian overrides: nothing here uses them.
rm -rf "$rootfs/usr/lib/x86_64-linux-gnu/gconv" "$rootfs/usr/share/lintian"
# Debian packages record licences in /usr/share/doc/*/copyright: kept.
install -d -m 0755 "$rootfs/etc" "$rootfs/usr/local/bin" "$rootfs/etc/airlock"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
install -d -m 1777 "$rootfs/tmp"
install -d -m 0700 -o 65532 -g 65532 "$rootfs/home/nonroot"
install -d -m 0750 -o 65532 -g 65532 "$rootfs/var/lib/airlock"
install -m 0755 "$BINARY" "$rootfs/usr/local/bin/airlock"
strip --strip-debug "$rootfs/usr/local/bin/airlock"
# Every library the binary needs is in the image (checked against the image's own loader).
needed="$(objdump -p "$rootfs/usr/local/bin/airlock" | awk '/NEEDED/ {print $2}')"
for lib in $needed; do
  [ -e "$rootfs/lib/x86_64-linux-gnu/$lib" ] || { say "image lacks $lib (NEEDED by airlock)"; exit 1; }
done
# Same inputs, same digest: every file's time is the commit's.
find "$rootfs" -exec touch -h -d "$CREATED" {} +
umoci repack --image "$svc:$VERSION" --history.created "$CREATED" --history.created_by "scripts/build-images.sh (libc6, libgcc-s1, airlock)" "$WORK/svc"
umoci config --image "$svc:$VERSION" \
  --created "$CREATED" --os linux --architecture amd64 \
  --config.user 65532:65532 \
  --config.entrypoint /usr/local/bin/airlock --config.cmd serve \
  --config.workingdir /var/lib/airlock \
  --config.env AIRLOCK_CONFIG=/etc/airlock/airlock.toml \
  --config.exposedports 8700/tcp \
  --config.volume /var/lib/airlock \
  --config.stopsignal SIGTERM \
  --config.label "org.opencontainers.image.title=airlock" \
  --config.label "org.opencontainers.image.description=Airlock approval service" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.created=$CREATED" \
  --config.label "org.opencontainers.image.licenses=$LICENSE" \
  --config.label "org.opencontainers.image.base.name=debian:$(cat /etc/debian_version) libc6 $(dpkg-deb -f "$LIBC_DEB" Version)" \
  --history.created "$CREATED" --history.created_by "umoci config (entrypoint, user, labels)"
umoci tag --image "$svc:$VERSION" latest
umoci gc --layout "$svc"

# --- image 2: the Wasm module (compat variant) ----------------------------------------
wasm_img="$OUT/airlock-filter"
rm -rf "$wasm_img"
umoci init --layout "$wasm_img"
umoci new --image "$wasm_img:$VERSION"
umoci unpack --image "$wasm_img:$VERSION" "$WORK/wasm"
install -m 0644 "$WASM" "$WORK/wasm/rootfs/plugin.wasm"
find "$WORK/wasm/rootfs" -exec touch -h -d "$CREATED" {} +
umoci repack --image "$wasm_img:$VERSION" --history.created "$CREATED" --history.created_by "scripts/build-images.sh (plugin.wasm)" "$WORK/wasm"
umoci config --image "$wasm_img:$VERSION" --no-history \
  --created "$CREATED" --os linux --architecture amd64 \
  --manifest.annotation "module.wasm.image/variant=compat" \
  --config.label "org.opencontainers.image.title=airlock-filter" \
  --config.label "org.opencontainers.image.description=Airlock proxy-wasm filter (Envoy, V8)" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.created=$CREATED" \
  --config.label "org.opencontainers.image.licenses=$LICENSE"
umoci tag --image "$wasm_img:$VERSION" latest
umoci gc --layout "$wasm_img"

module_sha="$(sha256sum "$WASM" | cut -d' ' -f1)"
printf '%s  plugin.wasm\n' "$module_sha" >"$OUT/airlock-filter.plugin.wasm.sha256"

size() { du -sb "$1/blobs" | cut -f1; }
say "service image  oci:$svc:$VERSION  $(size "$svc") bytes (compressed)  $(skopeo inspect --format '{{.Digest}}' "oci:$svc:$VERSION")"
say "filter module  oci:$wasm_img:$VERSION  $(size "$wasm_img") bytes (compressed)  $(skopeo inspect --format '{{.Digest}}' "oci:$wasm_img:$VERSION")"
say "plugin.wasm sha256 $module_sha (the EnvoyFilter's vm_config.code.remote.sha256)"

if [ -n "$PUSH" ]; then
  for name in airlock airlock-filter; do
    for tag in "$VERSION" latest; do
      say "skopeo copy oci:$OUT/$name:$tag docker://$PUSH/$name:$tag"
      skopeo copy --quiet --dest-tls-verify="$TLS_VERIFY" "oci:$OUT/$name:$tag" "docker://$PUSH/$name:$tag"
    done
  done
fi
