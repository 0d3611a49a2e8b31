"""Project invariants of the deployment artefacts that no schema expresses.

Covers docker-compose.yml, deploy/Dockerfile, deploy/k8s and the Redis Cluster variants
(docker-compose.cluster.yml, deploy/k8s-redis-cluster). Run by scripts/validate-deploy (after
the Compose and Kubernetes schema checks) as
`python deploy/invariants.py REPO_ROOT`. Prints one line per check; exits 1 listing every
violation. Needs PyYAML (the script's venv has it).
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
K8S = ROOT / "deploy" / "k8s"
failures: list[str] = []


def check(ok: bool, what: str, why: str) -> None:
    """Record one invariant: `what` is printed when it holds, `why` explains a violation."""
    if ok:
        print(f"  ok   {what}")
    else:
        print(f"  FAIL {what}: {why}")
        failures.append(f"{what}: {why}")


def seconds(text: str) -> float:
    """A LEADSTREAM_* duration (`250ms`, `5s`, `2m`, `1h`, `7d`, bare seconds) in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def known_env_names() -> set[str]:
    """Every LEADSTREAM_* name the Rust sources mention: a variable set in a deploy file that is
    not among them is a typo the services would silently ignore."""
    names: set[str] = set()
    for path in ROOT.glob("*/src/**/*.rs"):
        names.update(re.findall(r"LEADSTREAM_[A-Z0-9_]+", path.read_text(errors="replace")))
    return names


def check_env_names(where: str, names, known: set[str]) -> None:
    unknown = sorted(n for n in names if n.startswith("LEADSTREAM_") and n not in known)
    check(not unknown, f"{where}: every LEADSTREAM_* variable is read by the services",
          f"unknown (typo?): {', '.join(unknown)}")


# --- docker-compose.yml ------------------------------------------------------------------------

def compose(known: set[str]) -> None:
    print("docker-compose.yml")
    start = len(failures)
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc.get("services", {})
    for name in ["kafka", "kafka-init", "redis", "mailpit", "gateway", "processor", "notifier"]:
        check(name in services, f"service {name} exists", "missing")
    if len(failures) > start:
        return
    check(services["kafka"].get("image", "").startswith("apache/kafka:"),
          "kafka is the official apache/kafka image", services["kafka"].get("image", "none"))
    kenv = services["kafka"].get("environment", {})
    check("controller" in str(kenv.get("KAFKA_PROCESS_ROLES", "")), "kafka runs in KRaft mode",
          "KAFKA_PROCESS_ROLES has no controller role")
    redis_cmd = " ".join(map(str, services["redis"].get("command", [])))
    check("--appendonly yes" in redis_cmd, "redis has AOF persistence", f"command is {redis_cmd!r}")
    check(any(str(v).endswith(":/data") for v in services["redis"].get("volumes", [])),
          "redis keeps /data on a volume", "no volume mounted at /data")
    replicas = services["processor"].get("deploy", {}).get("replicas", 1)
    check(replicas == 2, "two processor replicas", f"deploy.replicas is {replicas}")
    for name, svc in services.items():
        if name == "kafka-init":
            continue  # one-shot: the others wait for it to complete
        check("healthcheck" in svc, f"{name} has a health check", "no healthcheck")
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            plain = deps  # short syntax: waits only for the container to be created
        else:
            plain = [d for d, v in deps.items() if not (v or {}).get("condition")]
        if deps:
            check(not plain, f"{name}: depends_on waits on a condition", f"plain: {plain}")
    for name in ["gateway", "processor", "notifier"]:
        deps = services[name].get("depends_on", {})
        check(deps.get("kafka-init", {}).get("condition") == "service_completed_successfully",
              f"{name} starts after the topics exist", "no depends_on kafka-init completed")
        check(deps.get("redis", {}).get("condition") == "service_healthy",
              f"{name} starts after redis is healthy", "no depends_on redis service_healthy")
        env = services[name].get("environment", {})
        check_env_names(f"compose {name}", env, known)
    genv = services["gateway"]["environment"]
    parts = int(str(genv.get("LEADSTREAM_PARTITIONS", 12)))
    check(replicas <= parts, "compose: processor replicas ≤ LEADSTREAM_PARTITIONS",
          f"{replicas} > {parts}")
    init = " ".join(map(str, services["kafka-init"].get("command", [])))
    check(f"--partitions {parts}" in init and "--if-not-exists" in init,
          "kafka-init creates the topics with LEADSTREAM_PARTITIONS partitions, idempotently",
          f"kafka-init command does not say --partitions {parts} --if-not-exists")
    key = str(genv.get("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ""))
    default = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", key)
    key = default.group(1) if default else key
    check(len(key) >= 32, "compose: the bootstrap admin key has the 32 characters the gateway "
          "requires", f"{key!r} is shorter")
    check(services["notifier"]["environment"].get("LEADSTREAM_SMTP_URL") == "smtp://mailpit:1025",
          "notifier sends email to mailpit", "LEADSTREAM_SMTP_URL is not smtp://mailpit:1025")


# --- deploy/Dockerfile -------------------------------------------------------------------------

def dockerfile() -> None:
    print("deploy/Dockerfile")
    lines = [l.strip() for l in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()]
    stages = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
    check(len(stages) >= 2, "multi-stage build", f"{len(stages)} FROM line(s)")
    final = lines[stages[-1]:] if stages else lines
    users = [l.split(None, 1)[1] for l in final if l.upper().startswith("USER ")]
    user = users[-1].split(":")[0] if users else "root"
    check(user not in ("root", "0"), "the runtime stage runs as a non-root user",
          f"USER is {user!r}" if users else "no USER in the final stage (root)")
    check(bool(re.fullmatch(r"\d+", user)), "the runtime USER is numeric (runAsNonRoot can verify)",
          f"USER is {user!r}")
    text = "\n".join(lines)
    check("cargo build --release --locked -p leadstream" in text,
          "builds only the leadstream binary, with the lock file", "no such cargo build line")
    base = lines[stages[-1]] if stages else ""
    check(re.search(r"slim|distroless", base) is not None,
          "small runtime base image (slim or distroless)", f"final stage is {base!r}")
    ignore = (ROOT / ".dockerignore").read_text().split()
    check("target" in ignore or "target/" in ignore or "/target" in ignore,
          ".dockerignore excludes target/", "target is sent to the build context")


# --- deploy/k8s --------------------------------------------------------------------------------

def load_k8s() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def kubernetes(known: set[str]) -> None:
    print("deploy/k8s")
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kust.get("resources", []))
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    check(listed == present, "kustomization.yaml lists exactly the manifests in deploy/k8s",
          f"unlisted: {sorted(present - listed)}, missing: {sorted(listed - present)}")

    docs = load_k8s()
    by_kind: dict[str, list[dict]] = {}
    for _, d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    kinds = ["Namespace", "ConfigMap", "Secret", "Deployment", "Service",
             "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for kind in kinds:
        check(kind in by_kind, f"a {kind} exists", "missing")
    if any(kind not in by_kind for kind in kinds):
        return
    config = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind["ConfigMap"]}
    secrets = {s["metadata"]["name"]: {**s.get("stringData", {}), **s.get("data", {})}
               for s in by_kind["Secret"]}
    cfg = config.get("leadstream-config", {})
    check_env_names("ConfigMap leadstream-config", cfg, known)
    for name, values in secrets.items():
        check_env_names(f"Secret {name}", values, known)
        real = [k for k, v in values.items() if "REPLACE_ME" not in str(v)]
        check(not real, f"Secret {name} holds placeholders only (REPLACE_ME)",
              f"values that look real: {real}")
    parts = int(cfg.get("LEADSTREAM_PARTITIONS", "12"))

    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    wanted = ["leadstream-gateway", "leadstream-processor", "leadstream-notifier"]
    for want in wanted:
        check(want in deployments, f"Deployment {want} exists", "missing")
    if any(want not in deployments for want in wanted):
        return
    for name, dep in deployments.items():
        spec = dep["spec"]["template"]["spec"]
        grace = spec.get("terminationGracePeriodSeconds")
        check(isinstance(grace, int) and grace > 0,
              f"{name}: terminationGracePeriodSeconds is set", "missing")
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True,
              f"{name}: runAsNonRoot", "pod securityContext.runAsNonRoot is not true")
        for c in spec["containers"]:
            cname = f"{name}/{c['name']}"
            for probe in ["livenessProbe", "readinessProbe"]:
                check(probe in c, f"{cname}: {probe}", "missing")
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True and
                  sc.get("allowPrivilegeEscalation") is False,
                  f"{cname}: read-only root filesystem, no privilege escalation",
                  "securityContext lacks readOnlyRootFilesystem/allowPrivilegeEscalation")
            res = c.get("resources", {})
            check("requests" in res and "limits" in res, f"{cname}: resource requests and limits",
                  "missing")
            env_names = [e["name"] for e in c.get("env", [])]
            check_env_names(cname, env_names, known)
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    check(ref["key"] in secrets.get(ref["name"], {}),
                          f"{cname}: secret {ref['name']}/{ref['key']} exists", "no such key")
            for src in c.get("envFrom", []):
                ref = src.get("configMapRef")
                if ref:
                    check(ref["name"] in config, f"{cname}: ConfigMap {ref['name']} exists",
                          "no such ConfigMap")

    gw = deployments["leadstream-gateway"]["spec"]["template"]["spec"]
    gc = gw["containers"][0]
    check(gc.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz",
          "gateway liveness probe is /healthz", str(gc.get("livenessProbe")))
    check(gc.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
          "gateway readiness probe is /readyz", str(gc.get("readinessProbe")))
    delay = seconds(cfg.get("LEADSTREAM_SHUTDOWN_DELAY", "1s"))
    drain = seconds(cfg.get("LEADSTREAM_SHUTDOWN_GRACE", "10s"))
    need = delay + 2 * drain  # listener delay, request drain, then the producer flush
    check(gw["terminationGracePeriodSeconds"] > need,
          f"gateway grace period ({gw['terminationGracePeriodSeconds']}s) > SHUTDOWN_DELAY + "
          f"2 × SHUTDOWN_GRACE ({need:g}s)", "Kubernetes would SIGKILL a draining gateway")
    hpas = [h for h in by_kind["HorizontalPodAutoscaler"]
            if h["spec"]["scaleTargetRef"]["name"] == "leadstream-gateway"]
    check(len(hpas) == 1 and h_cpu(hpas[0]), "gateway has a CPU HorizontalPodAutoscaler",
          "no autoscaling/v2 HPA on cpu targets leadstream-gateway")
    check("replicas" not in deployments["leadstream-gateway"]["spec"],
          "gateway Deployment leaves replicas to the HPA", "spec.replicas is set")

    for name in ["leadstream-processor", "leadstream-notifier"]:
        dep = deployments[name]
        replicas = dep["spec"].get("replicas", 1)
        check(replicas <= parts, f"{name}: replicas ({replicas}) ≤ LEADSTREAM_PARTITIONS ({parts})",
              "members beyond the partition count get no partition")
        labels = dep["spec"]["selector"]["matchLabels"]
        pdbs = [p for p in by_kind["PodDisruptionBudget"]
                if p["spec"]["selector"].get("matchLabels") == labels]
        check(len(pdbs) == 1, f"{name}: a PodDisruptionBudget selects it", f"{len(pdbs)} found")
        c = dep["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        port = str(env.get("LEADSTREAM_METRICS_ADDR", "")).rsplit(":", 1)[-1]
        ports = {p.get("name"): str(p["containerPort"]) for p in c.get("ports", [])}
        for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
            get = c.get(probe, {}).get("httpGet", {})
            target = ports.get(get.get("port"), str(get.get("port")))
            check(get.get("path") == path and target == port,
                  f"{name}: {probe} calls {path} on LEADSTREAM_METRICS_ADDR's port ({port})",
                  f"probe is {get}")
    proc = deployments["leadstream-processor"]["spec"]["template"]["spec"]
    check(proc["terminationGracePeriodSeconds"] > 35,
          "processor grace period > produce timeout (30s) + flush (5s)",
          f"{proc['terminationGracePeriodSeconds']}s")
    notif = deployments["leadstream-notifier"]["spec"]["template"]["spec"]
    attempt = max(seconds(cfg.get("LEADSTREAM_WEBHOOK_TIMEOUT", "10s")),
                  seconds(cfg.get("LEADSTREAM_SMTP_TIMEOUT", "30s")))
    check(notif["terminationGracePeriodSeconds"] > attempt + 10,
          f"notifier grace period > longest attempt ({attempt:g}s) + flush (10s)",
          f"{notif['terminationGracePeriodSeconds']}s")


# --- the Redis Cluster variants ----------------------------------------------------------------

def redis_urls(value: str) -> list[str]:
    return [u.strip() for u in str(value).split(",") if u.strip()]


def compose_cluster(known: set[str]) -> None:
    print("docker-compose.cluster.yml")
    doc = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    services = doc.get("services", {})
    nodes = [n for n, s in services.items()
             if "--cluster-enabled" in [str(a) for a in s.get("command", [])]]
    check(len(nodes) >= 6, "six or more cluster-enabled redis-server nodes (3 masters + replicas)",
          f"{len(nodes)}: {nodes}")
    check("redis" in nodes, "the base file's redis is a cluster node (depends_on stays valid)",
          "redis is not overridden with --cluster-enabled")
    for n in nodes:
        args = [str(a) for a in services[n].get("command", [])]
        check("--appendonly" in args and args[args.index("--appendonly") + 1] == "yes",
              f"{n}: AOF persistence", "no --appendonly yes")
        check("healthcheck" in services[n], f"{n}: healthcheck", "missing")
    init = services.get("redis-cluster-init", {})
    script = " ".join(map(str, init.get("command", [])))
    check("--cluster create" in script and "--cluster-replicas 1" in script,
          "redis-cluster-init creates the cluster with one replica per master", script[:80])
    deps = init.get("depends_on", {})
    check(all(deps.get(n, {}).get("condition") == "service_healthy" for n in nodes),
          "redis-cluster-init waits for every node to be healthy", f"depends_on: {deps}")
    for name in ["gateway", "processor", "notifier"]:
        svc = services.get(name, {})
        env = svc.get("environment", {})
        check_env_names(f"compose cluster {name}", env, known)
        hosts = [u.split("//", 1)[-1].split("@")[-1].split(":")[0]
                 for u in redis_urls(env.get("LEADSTREAM_REDIS_URL", ""))]
        check(sorted(hosts) == sorted(nodes), f"{name}: LEADSTREAM_REDIS_URL lists every node",
              f"{hosts} vs {nodes}")
        check(str(env.get("LEADSTREAM_REDIS_CLUSTER")) == "true",
              f"{name}: LEADSTREAM_REDIS_CLUSTER is true", "not set")
        check(svc.get("depends_on", {}).get("redis-cluster-init", {}).get("condition")
              == "service_completed_successfully",
              f"{name} starts after the cluster is created", "no depends_on redis-cluster-init")


def kubernetes_cluster(known: set[str]) -> None:
    print("deploy/k8s-redis-cluster")
    over = ROOT / "deploy" / "k8s-redis-cluster"
    kust = yaml.safe_load((over / "kustomization.yaml").read_text())
    check("../k8s" in kust.get("resources", []), "the overlay builds on deploy/k8s",
          f"resources: {kust.get('resources')}")
    patched = {p.get("path") for p in kust.get("patches", [])}
    present = {p.name for p in over.glob("*.yaml")} - {"kustomization.yaml"}
    check(patched == present, "kustomization.yaml patches with exactly the files present",
          f"unlisted: {sorted(present - patched)}, missing: {sorted(patched - present)}")
    docs = {d["kind"]: d for p in sorted(present)
            for d in yaml.safe_load_all((over / p).read_text()) if d}
    cm = docs.get("ConfigMap", {})
    check(cm.get("metadata", {}).get("name") == "leadstream-config" and
          cm.get("data", {}).get("LEADSTREAM_REDIS_CLUSTER") == "true",
          "the ConfigMap patch sets LEADSTREAM_REDIS_CLUSTER=true", str(cm.get("data")))
    check_env_names("overlay ConfigMap", cm.get("data", {}), known)
    sec = docs.get("Secret", {})
    data = sec.get("stringData", {})
    check_env_names("overlay Secret", data, known)
    urls = redis_urls(data.get("LEADSTREAM_REDIS_URL", ""))
    check(sec.get("metadata", {}).get("name") == "leadstream-secrets" and len(urls) >= 3 and
          all(u.startswith(("redis://", "rediss://")) and "REPLACE_ME" in u for u in urls),
          "the Secret patch lists several cluster nodes, placeholders only (REPLACE_ME)",
          f"{urls}")


def h_cpu(hpa: dict) -> bool:
    return hpa.get("apiVersion") == "autoscaling/v2" and any(
        m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
        for m in hpa["spec"].get("metrics", []))


def main() -> int:
    known = known_env_names()
    if not known:
        print(f"no Rust sources under {ROOT}: cannot check variable names")
        return 1
    compose(known)
    dockerfile()
    kubernetes(known)
    compose_cluster(known)
    kubernetes_cluster(known)
    if failures:
        print(f"\n{len(failures)} invariant(s) violated:")
        for f in failures:
            print(f"  - {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
