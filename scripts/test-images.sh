#!/usr/bin/env bash
# Builds both images (scripts/build-images.sh) and checks them without a Docker daemon:
#   - pushed (build-images.sh --push) to a registry started on 127.0.0.1 (Debian's
#     docker-registry), both keep their digests and the Wasm artifact its manifest;
#   - the service image's config (skopeo): non-root user, ENTRYPOINT/CMD, port, volume,
#     labels version = the crate's and revision = this commit; one layer; no shell in it;
#   - the Wasm artifact (skopeo, raw manifest + layer): Istio's "compat" variant, exactly
#     one tar+gzip layer holding only plugin.wasm, whose sha256 equals the module's;
#   - the service image unpacked (umoci) and run from its own root filesystem (chroot, as
#     user 65532, with the image's libc): `airlock --version`, then `airlock serve` on a
#     the Kubernetes base's airlock.toml (ConfigMap) until /healthz and /readyz answer on 127.0.0.1, then a
#     SIGTERM and a clean exit. Bounded in time.
# In CI (scripts/test.sh) the image is built from target/debug/airlock, which test.sh has
# already built: no second, release, build. `--release` packages a release build instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'test-images: %s\n' "$*"; }

BINARY="$ROOT/target/debug/airlock"
[ "${1:-}" = "--release" ] && BINARY=""
if [ -n "$BINARY" ] && [ ! -x "$BINARY" ]; then
  cargo build --quiet -p airlock-approval-svc
fi
OUT="$ROOT/target/images"
WASM="$ROOT/target/wasm32-wasip1/release/airlock_filter.opt.wasm"
[ -f "$WASM" ] || bash scripts/build-wasm.sh --no-fault

start=$(date +%s)
HEAD_AT_BUILD="$(git rev-parse HEAD)"   # what build-images.sh labels (read before a colleague's commit can move it)
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' approval-svc/Cargo.toml | head -1)"
TMP="$(mktemp -d)"
SERVE_PID=""
REGISTRY_PID=""
cleanup() {
  for pid in "$SERVE_PID" "$REGISTRY_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A registry on 127.0.0.1 (Debian's docker-registry), so that --push is tested too.
reg_port="$(free_port)"
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n' \
  "$TMP/registry" "$reg_port" >"$TMP/registry.yml"
docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$reg_port/v2/', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
REGISTRY="127.0.0.1:$reg_port/airlock"

bash scripts/build-images.sh ${BINARY:+--binary "$BINARY"} --wasm "$WASM" --out "$OUT" \
  --push "$REGISTRY" --insecure-registry | sed 's/^/  /'
for name in airlock airlock-filter; do
  here="$(skopeo inspect --format '{{.Digest}}' "oci:$OUT/$name:$VERSION")"
  there="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REGISTRY/$name:$VERSION")"
  [ "$here" = "$there" ] || { say "FAIL pushed $name has digest $there, the layout $here"; exit 1; }
  say "ok   pushed to a registry on 127.0.0.1: $name:$VERSION keeps its digest ${here:0:19}..."
done
skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/airlock-filter:$VERSION" >"$TMP/wasm-pushed.json"
kill -TERM "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true; REGISTRY_PID=""

# 1-2. Structure, from skopeo's view of the layouts.
skopeo inspect --config "oci:$OUT/airlock:$VERSION" >"$TMP/svc-config.json"
skopeo inspect --raw "oci:$OUT/airlock:$VERSION" >"$TMP/svc-manifest.json"
skopeo inspect --config "oci:$OUT/airlock-filter:$VERSION" >"$TMP/wasm-config.json"
skopeo inspect --raw "oci:$OUT/airlock-filter:$VERSION" >"$TMP/wasm-manifest.json"
skopeo inspect --raw "oci:$OUT/airlock:latest" >"$TMP/svc-latest.json"
cmp -s "$TMP/wasm-manifest.json" "$TMP/wasm-pushed.json" || { say "FAIL the registry changed the Wasm artifact's manifest"; exit 1; }

python3 - "$TMP" "$OUT" "$VERSION" "$HEAD_AT_BUILD" "$WASM" <<'EOF'
import hashlib, io, json, sys, tarfile
tmp, out, version, head, wasm = sys.argv[1:]
load = lambda name: json.load(open(f"{tmp}/{name}"))
failed = []
def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failed.append(what)
def blob(layout, digest):
    algo, hexd = digest.split(":")
    data = open(f"{out}/{layout}/blobs/{algo}/{hexd}", "rb").read()
    check(hashlib.sha256(data).hexdigest() == hexd, f"{layout}: blob {digest[:19]}… matches its digest")
    return data

cfg = load("svc-config.json"); c = cfg["config"]; man = load("svc-manifest.json")
user = c.get("User", "")
check(user and user.split(":")[0] not in ("", "0", "root"), f"service runs as a non-root user ({user})")
check(c.get("Entrypoint") == ["/usr/local/bin/airlock"], "ENTRYPOINT airlock")
check(c.get("Cmd") == ["serve"], "CMD serve")
check("8700/tcp" in c.get("ExposedPorts", {}), "exposes 8700/tcp")
check("/var/lib/airlock" in c.get("Volumes", {}), "volume /var/lib/airlock (the SQLite store)")
labels = c.get("Labels", {})
check(labels.get("org.opencontainers.image.version") == version, f"label version = {version}")
check(labels.get("org.opencontainers.image.revision", "").split("-")[0] == head, "label revision = HEAD")
check(cfg["os"] == "linux" and cfg["architecture"] == "amd64", "linux/amd64")
check(len(man["layers"]) == 1, "service image has one layer")
check(load("svc-latest.json") == man, "tag latest = tag " + version)
layer = tarfile.open(fileobj=io.BytesIO(blob("airlock", man["layers"][0]["digest"])), mode="r:gz")
members = {m.name.lstrip("./"): m for m in layer.getmembers()}
shells = [n for n in members if n.split("/")[-1] in ("sh", "bash", "dash", "busybox")]
check(not shells, f"no shell in the image ({shells or 'none'})")
binm = members.get("usr/local/bin/airlock")
check(binm is not None and binm.uid == 0 and binm.mode & 0o022 == 0, "airlock binary root-owned, not writable by others")
store = members.get("var/lib/airlock")
check(store is not None and store.isdir() and store.uid == 65532, "/var/lib/airlock owned by 65532")

wm = load("wasm-manifest.json")
check(wm.get("annotations", {}).get("module.wasm.image/variant") == "compat", "Wasm artifact: annotation module.wasm.image/variant=compat")
check(len(wm["layers"]) == 1, "Wasm artifact: exactly one layer")
check(wm["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip", "Wasm artifact: layer is OCI tar+gzip")
wl = tarfile.open(fileobj=io.BytesIO(blob("airlock-filter", wm["layers"][0]["digest"])), mode="r:gz")
files = [m for m in wl.getmembers() if m.isfile()]
check([m.name.lstrip("./") for m in files] == ["plugin.wasm"], f"Wasm artifact: the layer's only file is /plugin.wasm ({[m.name for m in files]})")
if files:
    got = hashlib.sha256(wl.extractfile(files[0]).read()).hexdigest()
    want = hashlib.sha256(open(wasm, "rb").read()).hexdigest()
    check(got == want, f"Wasm artifact: plugin.wasm sha256 = module's ({want[:16]}…)")
    pinned = open(f"{out}/airlock-filter.plugin.wasm.sha256").read().split()[0]
    check(pinned == want, "airlock-filter.plugin.wasm.sha256 names the module's digest")
wc = load("wasm-config.json")["config"]
check(wc.get("Labels", {}).get("org.opencontainers.image.version") == version, "Wasm artifact: label version")
sys.exit(1 if failed else 0)
EOF

# 3. Run the service from the unpacked image.
umoci unpack --image "$OUT/airlock:$VERSION" "$TMP/bundle" >/dev/null
rootfs="$TMP/bundle/rootfs"
CHROOT="$(command -v chroot)"
ver="$(timeout 10 "$CHROOT" --userspec=65532:65532 "$rootfs" /usr/local/bin/airlock --version)"
[ "$ver" = "airlock $VERSION" ] || { say "FAIL airlock --version in the image said '$ver'"; exit 1; }
say "ok   airlock --version in the image: $ver"

port="$(free_port)"
# The configuration the Kubernetes base ships (deploy/kubernetes/base/configmap.yaml), on
# 127.0.0.1 instead of the pod's interfaces, with its secret files where the Deployment
# mounts them: the shipped image starts on the shipped configuration.
"$ROOT/.venv/bin/python" - "$ROOT/deploy/kubernetes/base/configmap.yaml" "$port" >"$rootfs/etc/airlock/airlock.toml" <<'PY'
import sys, yaml
toml = yaml.safe_load(open(sys.argv[1]))["data"]["airlock.toml"]
assert 'listen = "0.0.0.0:8700"' in toml
sys.stdout.write(toml.replace('listen = "0.0.0.0:8700"', f'listen = "127.0.0.1:{sys.argv[2]}"'))
PY
install -d -m 0755 "$rootfs/run/secrets/airlock"
for f in $(sed -n 's|.*"\(/run/secrets/airlock/[^"]*\)".*|\1|p' "$rootfs/etc/airlock/airlock.toml" | sort -u); do  # commented-out ones too: harmless
  head -c 32 /dev/urandom | base64 >"$rootfs$f"
  chown 0:65532 "$rootfs$f"; chmod 0440 "$rootfs$f"   # as the Deployment mounts them (fsGroup, 0440)
done
# exec: $! is the service itself (env and chroot exec), so the SIGTERM below reaches it.
env -i AIRLOCK_CONFIG=/etc/airlock/airlock.toml "$CHROOT" --userspec=65532:65532 "$rootfs" \
  /usr/local/bin/airlock serve >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
python3 - "$port" <<'EOF' || { say "FAIL airlock serve from the image"; cat "$TMP/serve.log"; exit 1; }
import sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 20
for path in ("/healthz", "/readyz"):
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    print(f"test-images: ok   airlock serve in the image answers {path}: {r.read().decode()}")
                    break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(1)
        time.sleep(0.1)
EOF
kill -TERM "$SERVE_PID"
code=0
for _ in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SERVE_PID" || code=$?
SERVE_PID=""
[ "$code" -eq 0 ] || { say "FAIL airlock serve exited $code after SIGTERM"; cat "$TMP/serve.log"; exit 1; }
owner="$(stat -c %u "$rootfs/var/lib/airlock/airlock.db")"
[ "$owner" = 65532 ] || { say "FAIL the store was written by uid $owner"; exit 1; }
say "ok   SIGTERM: clean exit; store written by uid 65532 in the volume"
say "images built and checked in $(( $(date +%s) - start )) s"
