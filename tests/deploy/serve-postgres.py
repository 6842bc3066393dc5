"""Starts the real `target/debug/airlock serve` on the postgres overlay's own airlock.toml
(deploy/kubernetes/overlays/postgres, rendered by validate.py's renderer) against a real
PostgreSQL (URL in AIRLOCK_TEST_POSTGRES_URL, from scripts/postgres.sh), with the secret
files where the Deployment mounts them rewritten under a temp dir; waits for /readyz,
then SIGTERM and a clean exit. Then fail closed: a URL that demands TLS
(sslmode=require) is refused at start, because the client has no TLS connector.
Usage: serve-postgres.py DEPLOY_DIR AIRLOCK_BINARY   (exit 1 on any failure)
"""

import base64, os, socket, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from validate import render  # noqa: E402

deploy, binary = sys.argv[1:]
url = os.environ["AIRLOCK_TEST_POSTGRES_URL"]
failed = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failed.append(what)


objs = render(os.path.join(deploy, "kubernetes", "overlays", "postgres"))
toml = next(o for o in objs if o["kind"] == "ConfigMap")["data"]["airlock.toml"]
with tempfile.TemporaryDirectory() as tmp:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    assert 'listen = "0.0.0.0:8700"' in toml
    conf = toml.replace('listen = "0.0.0.0:8700"', f'listen = "127.0.0.1:{port}"').replace('"/run/secrets/', f'"{tmp}/')
    for line in conf.splitlines():
        line = line.split("#")[0]
        if f'"{tmp}/' in line:
            path = line.split(f'"{tmp}/')[1].split('"')[0]
            os.makedirs(os.path.dirname(f"{tmp}/{path}"), exist_ok=True)
            open(f"{tmp}/{path}", "w").write(base64.b64encode(os.urandom(32)).decode())
    store_url = f"{tmp}/airlock-store/url"
    open(store_url, "w").write(url + "\n")
    open(f"{tmp}/airlock.toml", "w").write(conf)
    env = {"PATH": os.environ["PATH"]}
    proc = subprocess.Popen([binary, "serve", "--config", f"{tmp}/airlock.toml"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready, deadline = None, time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                ready = (r.status, r.read().decode())
                break
        except OSError:
            time.sleep(0.2)
    check(ready is not None and ready[0] == 200 and "ready" in ready[1], f"airlock serve on the overlay's airlock.toml + PostgreSQL: /readyz {ready}")
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill(); out, _ = proc.communicate()
    check(proc.returncode == 0, f"SIGTERM: clean exit ({proc.returncode})")
    if proc.returncode != 0 or ready is None:
        print(out[:4000])  # the first panic or error, not the backtrace
    check("PostgreSQL" in out, "the service says it runs on PostgreSQL")

    open(store_url, "w").write(url + ("&" if "?" in url else "?") + "sslmode=require\n")
    try:
        r = subprocess.run([binary, "serve", "--config", f"{tmp}/airlock.toml"], env=env, capture_output=True, text=True, timeout=30)
        code, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        code, out = None, "still running after 30 s"
    check(code not in (0, None) and "store.url" in out and "TLS" in out, f"sslmode=require is refused at start (no TLS client), exit {code}: {out.strip().splitlines()[-1] if out.strip() else ''}")

print(f"serve-postgres: {'FAILED: ' + '; '.join(failed) if failed else 'every check passed'}")
sys.exit(1 if failed else 0)
