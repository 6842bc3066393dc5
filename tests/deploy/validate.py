"""Validates the Kubernetes manifests in deploy/kubernetes/ (run by scripts/test-deploy.sh).

1. Renders each kustomization (resources, `images:`, JSON 6902 `patches:`; anything else
   is refused so this rendition cannot silently differ from kustomize's). When `kubectl`
   is installed, its `kubectl kustomize` must render the same objects.
2. Core kinds against the Kubernetes API's schemas (PyPI kubernetes-validate, strict:
   unknown fields are errors), at the oldest Kubernetes the manifests claim
   (unhealthyPodEvictionPolicy is GA in 1.31) and at the newest the package knows.
3. Istio kinds against Istio's CRD schemas (tests/deploy/validate-istio.mjs), and
   envoy/istio-wasmplugin.yaml with them.
4. What no schema knows: the pieces agree with each other and with the service's
   contract (selectors, ports, probe paths, secret files mounted, one replica on SQLite,
   non-root, the EnvoyFilter's cluster naming the Service, the module pinned by sha256).
5. The validators are not vacuous: a broken Deployment and a broken EnvoyFilter fail.
Usage: validate.py DEPLOY_DIR   (exit 1 on any failure)
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S_VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]
CORE_GROUPS = ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1")
failed = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failed.append(what)
    return ok


def json_pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def render(kdir):
    """kustomize build, for the features these manifests use."""
    k = yaml.safe_load(open(os.path.join(kdir, "kustomization.yaml")))
    unknown = set(k) - {"apiVersion", "kind", "resources", "images", "patches"}
    if unknown:
        raise SystemExit(f"{kdir}/kustomization.yaml: {sorted(unknown)} not supported by this renderer")
    objs = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(kdir, res))
        if os.path.isdir(path):
            objs += render(path)
        else:
            real = os.path.realpath(path)
            if not real.startswith(os.path.realpath(kdir) + os.sep):
                raise SystemExit(f"{path}: outside {kdir} (kustomize refuses it)")
            objs += [d for d in yaml.safe_load_all(open(path)) if d]
    for img in k.get("images", []):
        for o in objs:
            spec = o.get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                if c["image"].split("@")[0].split(":")[0] == img["name"]:
                    name = img.get("newName", img["name"])
                    c["image"] = f"{name}@{img['digest']}" if "digest" in img else f"{name}:{img.get('newTag', 'latest')}"
    for patch in k.get("patches", []):
        t = patch["target"]
        ops = yaml.safe_load(patch["patch"]) if "patch" in patch else yaml.safe_load(open(os.path.join(kdir, patch["path"])))
        targets = [o for o in objs if o["kind"] == t["kind"] and o["metadata"]["name"] == t["name"]]
        if len(targets) != 1:
            raise SystemExit(f"{kdir}: patch target {t} matches {len(targets)} objects")
        if isinstance(ops, dict) and ops.get("$patch") == "delete":  # a strategic-merge delete of the object
            objs.remove(targets[0])
            continue
        for op in ops:
            apply_op(kdir, targets[0], op)
    return objs


def apply_op(kdir, target, op):
    """One JSON 6902 operation: add, replace, remove, test (what the overlays use)."""
    parent, key = json_pointer(target, op["path"])
    if isinstance(parent, list):
        index = len(parent) if key == "-" else int(key)
        present = index < len(parent)
    else:
        index, present = key, key in parent
    if op["op"] == "add" and isinstance(parent, list):
        parent.insert(index, op["value"])
    elif op["op"] == "add" or (op["op"] == "replace" and present):
        parent[index] = op["value"]
    elif op["op"] == "remove" and present:
        del parent[index]
    elif op["op"] == "test" and present and parent[index] == op["value"]:
        pass
    else:
        raise SystemExit(f"{kdir}: patch op {op} not applicable")


def key(o):
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


def validate_istio(objs):
    out = subprocess.run(
        ["node", os.path.join(HERE, "validate-istio.mjs")],
        input=json.dumps(objs), capture_output=True, text=True, cwd=HERE,
    )
    return out.returncode, out.stdout + out.stderr


def validate_core(o):
    errors = []
    for v in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(o, v, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{v}: {e.message} at {'.'.join(map(str, e.path))}")
    return errors


def main(deploy):
    kroot = os.path.join(deploy, "kubernetes")
    kdirs = sorted(
        os.path.relpath(d, kroot) for d, _, files in os.walk(kroot) if "kustomization.yaml" in files
    )
    rendered = {}
    for rel in kdirs:
        objs = render(os.path.join(kroot, rel))
        rendered[rel] = objs
        check(len({key(o) for o in objs}) == len(objs), f"{rel}: {len(objs)} objects, no duplicates")
        if shutil.which("kubectl"):
            out = subprocess.run(["kubectl", "kustomize", os.path.join(kroot, rel)], capture_output=True, text=True)
            theirs = [d for d in yaml.safe_load_all(out.stdout) if d] if out.returncode == 0 else None
            check(
                theirs is not None and sorted(theirs, key=key) == sorted(objs, key=key),
                f"{rel}: kubectl kustomize renders the same objects{'' if theirs is not None else ': ' + out.stderr.strip()}",
            )

    # Overlays re-render the base's objects under the same names: the base and istio are
    # checked together below; each overlay's objects on their own (check_postgres).
    every = {key(o): o for rel, objs in rendered.items() if not rel.startswith("overlays") for o in objs}
    for rel, objs in rendered.items():
        if rel.startswith("overlays"):
            for o in objs:
                if o != every.get(key(o)):
                    errors = validate_core(o)
                    check(not errors, f"{rel}: {'/'.join(key(o))}: Kubernetes {' and '.join(K8S_VERSIONS)} schemas, strict" + (f": {errors}" if errors else ""))
    if "overlays/postgres" in rendered:
        check_postgres(rendered["overlays/postgres"])
    else:
        check(False, "overlays/postgres exists")
    istio = [o for o in every.values() if ".istio.io/" in o["apiVersion"]]
    core = [o for o in every.values() if o not in istio]
    # The WasmPlugin alternative (envoy/, not in a kustomization) gets the same schema check.
    istio += [d for d in yaml.safe_load_all(open(os.path.join(deploy, "..", "envoy", "istio-wasmplugin.yaml"))) if d]
    for o in core:
        check(o["apiVersion"] in CORE_GROUPS, f"{key(o)}: a core kind ({o['apiVersion']})")
        errors = validate_core(o)
        check(not errors, f"{'/'.join(key(o))}: Kubernetes {' and '.join(K8S_VERSIONS)} schemas, strict" + (f": {errors}" if errors else ""))
    code, out = validate_istio(istio)
    print(out, end="")
    check(code == 0 and len(istio) > 0, f"{len(istio)} Istio objects validate against Istio's CRD schemas")

    # --- how the pieces fit -------------------------------------------------------------
    get = lambda kind, ns, name: every.get((kind, ns, name))
    ns = "airlock-system"
    dep = get("Deployment", ns, "airlock-approval")
    svc = get("Service", ns, "airlock-approval")
    cm = get("ConfigMap", ns, "airlock-config")
    pdb = get("PodDisruptionBudget", ns, "airlock-approval")
    netpol = get("NetworkPolicy", ns, "airlock-approval")
    ef = get("EnvoyFilter", "istio-egress", "airlock")
    if not check(all([dep, svc, cm, pdb, netpol, ef]), "Deployment, Service, ConfigMap, PDB, NetworkPolicy, EnvoyFilter present"):
        return
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    matches = lambda sel: all(labels.get(k) == v for k, v in sel.items())
    check(matches(dep["spec"]["selector"]["matchLabels"]), "Deployment selector matches its pods")
    check(matches(svc["spec"]["selector"]), "Service selects the pods")
    check(matches(pdb["spec"]["selector"]["matchLabels"]), "PDB selects the pods")
    check(matches(netpol["spec"]["podSelector"]["matchLabels"]), "NetworkPolicy selects the pods")

    conf = tomllib.loads(cm["data"]["airlock.toml"])
    (c,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    listen_port = int(conf["listen"].rsplit(":", 1)[1])
    check(ports.get("http") == listen_port, f"container port http = airlock.toml listen port ({listen_port})")
    check(conf["listen"].startswith("0.0.0.0:"), "the service listens on the pod's interfaces")
    check(svc["spec"]["ports"][0]["targetPort"] in ("http", listen_port), "Service targets the http port")
    check(all(p["port"] == listen_port for r in netpol["spec"]["ingress"] for p in r["ports"]), "NetworkPolicy opens only the service port")
    gw_rules = [r for r in netpol["spec"]["ingress"] if any(f.get("podSelector", {}).get("matchLabels", {}).get("istio") == "egressgateway" for f in r["from"])]
    check(
        len(gw_rules) == 1 and gw_rules[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == ef["metadata"]["namespace"],
        "NetworkPolicy admits the egress gateway from the EnvoyFilter's namespace",
    )
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", "probes: liveness /healthz, readiness /readyz")

    # SQLite: one writer. Several replicas wait for PostgreSQL (issue 10).
    sqlite = not conf["database"].startswith(("postgres://", "postgresql://"))
    check(not sqlite or (dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"), "SQLite store: one replica, Recreate")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    db_dir = os.path.dirname(conf["database"])
    check(db_dir in mounts and "persistentVolumeClaim" in volumes[mounts[db_dir]["name"]], f"the store's directory {db_dir} is the PVC")
    crate = tomllib.load(open(os.path.join(deploy, "..", "approval-svc", "Cargo.toml"), "rb"))["package"]["version"]
    image = c["image"].split("/")[-1]
    check(image.split("@")[0].split(":")[0] == "airlock", f"image {c['image']} is airlock")
    check("@" in image or image.endswith(":" + crate), f"image tag is the crate's version {crate} (or a digest)")

    # Every secret is a file under a mounted Secret; none inline, none from env.
    files = [k["secret_file"] for k in conf["gateway"]["keys"]]
    files += [conf["audit"]["checkpoint_key_file"]] if "checkpoint_key_file" in conf.get("audit", {}) else []
    files += [p["secret_file"] for p in conf.get("credentials", {}).values() if "secret_file" in p]
    check(all("secret_env" not in k for k in conf["gateway"]["keys"]), "gateway keys from files, not env")
    for f in files:
        mount = next((m for p, m in mounts.items() if f.startswith(p + "/")), None)
        ok = mount is not None and "secret" in volumes[mount["name"]] and mount.get("readOnly")
        check(ok, f"{f}: on a read-only Secret mount")
    check("audit" in conf and "checkpoint_key_file" in conf["audit"], "the audit chain is sealed (checkpoint_key_file)")

    psc, csc = pod["spec"]["securityContext"], c["securityContext"]
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "pod runs as non-root")
    check(csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True and csc["capabilities"]["drop"] == ["ALL"], "container: no escalation, read-only root, no capabilities")
    check("limits" in c["resources"] and "requests" in c["resources"], "resources set")
    check(pod["spec"].get("automountServiceAccountToken") is False, "no service-account token")

    # The EnvoyFilter: body-capable, fail closed, module pinned, cluster = the Service.
    wasm = next(p["patch"]["value"] for p in ef["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER")
    cfg = wasm["typed_config"]["config"]
    check(cfg["allow_on_headers_stop_iteration"] is True, "EnvoyFilter: allow_on_headers_stop_iteration (request bodies)")
    check(cfg["failure_policy"] == "FAIL_RELOAD", "EnvoyFilter: failure_policy FAIL_RELOAD")
    remote = cfg["vm_config"]["code"]["remote"]
    check(re.fullmatch(r"[0-9a-f]{64}", remote["sha256"]) is not None, "EnvoyFilter: module pinned by sha256")
    plugin = json.loads(cfg["configuration"]["value"])
    fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    want = f"outbound|{svc['spec']['ports'][0]['port']}||{fqdn}"
    check(plugin["approval_service"]["cluster"] == want, f"EnvoyFilter: approval_service.cluster = {want}")
    check(plugin["approval_service"]["authority"] == fqdn, "EnvoyFilter: approval_service.authority = the Service")
    key_ids = {k["id"] for k in conf["gateway"]["keys"]}
    check(plugin["approval_service"]["signing"]["key_id"] in key_ids, "EnvoyFilter: signing key id is one of the service's gateway keys")
    host = remote["http_uri"]["uri"].split("/")[2]
    check(remote["http_uri"]["cluster"] == f"outbound|443||{host}", "EnvoyFilter: module fetched through Istio's cluster for its host")
    se = [o for o in every.values() if o["kind"] == "ServiceEntry" and host in o["spec"]["hosts"]]
    dr = [o for o in every.values() if o["kind"] == "DestinationRule" and o["spec"]["host"] == host]
    check(len(se) == 1 and len(dr) == 1 and dr[0]["spec"]["trafficPolicy"]["tls"]["mode"] == "SIMPLE", "module host: ServiceEntry + TLS DestinationRule")
    ap = get("AuthorizationPolicy", ns, "airlock-approval")
    principal = ap["spec"]["rules"][0]["from"][0]["source"]["principals"][0] if ap else ""
    check(f"/ns/{ef['metadata']['namespace']}/" in principal, "AuthorizationPolicy: gateway paths for the egress gateway's identity")

    # --- the validators reject what they should ----------------------------------------
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    check(bool(validate_core(bad)), "a Deployment with an unknown field is refused")
    bad = copy.deepcopy(dep)
    bad["spec"]["replicas"] = "one"
    check(bool(validate_core(bad)), "a Deployment with a mistyped field is refused")
    bad = copy.deepcopy(ef)
    bad["spec"]["configPatches"][0]["applyTo"] = "HTTP_FILTERS"
    code, _ = validate_istio([bad])
    check(code != 0, "an EnvoyFilter with an unknown applyTo is refused")
    bad = copy.deepcopy(ap)
    bad["spec"]["action"] = "PERMIT"
    code, _ = validate_istio([bad])
    check(code != 0, "an AuthorizationPolicy with an unknown action is refused")


def check_postgres(objs):
    """The several-replicas shape (deploy/kubernetes/overlays/postgres, docs/high-availability.md)."""
    print("  overlays/postgres:")
    get = lambda kind, name: next((o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name), None)
    dep, pdb, netpol, cm = (get(k, n) for k, n in (("Deployment", "airlock-approval"), ("PodDisruptionBudget", "airlock-approval"), ("NetworkPolicy", "airlock-approval"), ("ConfigMap", "airlock-config")))
    if not check(all([dep, pdb, netpol, cm]), "postgres: Deployment, PDB, NetworkPolicy, ConfigMap present"):
        return
    conf = tomllib.loads(cm["data"]["airlock.toml"])
    pod = dep["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    replicas = dep["spec"]["replicas"]
    check(replicas >= 2, f"postgres: several replicas ({replicas})")
    strategy = dep["spec"]["strategy"]
    check(strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}, "postgres: RollingUpdate, maxUnavailable 0, maxSurge 1")
    check(not [o for o in objs if o["kind"] == "PersistentVolumeClaim"], "postgres: no PersistentVolumeClaim rendered")
    check(all("persistentVolumeClaim" not in v for v in pod["spec"]["volumes"]), "postgres: no PVC volume in the pod")
    check("database" not in conf and "url" not in conf.get("store", {}), "postgres: no SQLite `database`, no inline store.url")
    check(all(e["name"] != "AIRLOCK_STORE_URL" for e in c.get("env", [])), "postgres: no AIRLOCK_STORE_URL in env")
    url_file = conf.get("store", {}).get("url_file", "")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mount = next((m for p, m in mounts.items() if url_file.startswith(p + "/")), None)
    secret = volumes[mount["name"]].get("secret") if mount else None
    name = url_file[len(mount["mountPath"]) + 1:] if mount else ""
    check(
        bool(url_file) and secret is not None and mount.get("readOnly") is True and any(i["path"] == name for i in secret.get("items", [{"path": name}])),
        f"postgres: store.url_file {url_file or '(unset)'} is a file of a read-only Secret mount",
    )
    minimum = pdb["spec"].get("minAvailable")
    check(isinstance(minimum, int) and replicas // 2 + 1 <= minimum < replicas, f"postgres: PDB minAvailable {minimum} keeps a majority of {replicas} serving and lets a drain proceed")
    labels = pod["metadata"]["labels"]
    spread = [t for t in pod["spec"].get("topologySpreadConstraints", []) if t["topologyKey"] == "kubernetes.io/hostname"]
    check(
        len(spread) == 1 and spread[0]["whenUnsatisfiable"] == "DoNotSchedule" and all(labels.get(k) == v for k, v in spread[0]["labelSelector"]["matchLabels"].items()),
        "postgres: replicas spread over nodes (topologySpreadConstraints on kubernetes.io/hostname, selecting the pods)",
    )
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["readinessProbe"]["timeoutSeconds"] > 3, "postgres: readiness /readyz (reaches the database), timeout above the pool's 3 s")
    check(
        any(p.get("port") == 5432 and p.get("protocol", "TCP") == "TCP" for r in netpol["spec"]["egress"] for p in r.get("ports", [])),
        "postgres: NetworkPolicy lets the pods reach PostgreSQL (5432/TCP)",
    )
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiabel"] = "DoNotSchedule"
    check(bool(validate_core(bad)), "postgres: a Deployment with a misspelt spread field is refused")


if __name__ == "__main__":
    main(sys.argv[1])
    print(f"deploy: {'FAILED: ' + '; '.join(failed) if failed else 'every check passed'}")
    sys.exit(1 if failed else 0)
