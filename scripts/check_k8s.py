#!/usr/bin/env python3
"""Offline checks of the Kubernetes deliverables (run by scripts/check-k8s.sh, which provides the
venv and promtool):

- the chart (charts/platform) lints and renders for its default values and every ci/*.yaml, and
  every rendered object validates against the Kubernetes API schemas (strict), CRD kinds
  excepted (checked for the fields the platform relies on instead);
- the chart's promises per service (non-root, probes, secrets by reference, ...) hold;
- every file in k8s/ validates the same way, and its topics match topics::ALL of shared/events;
- the Dockerfile names only paths, packages and binaries that exist;
- promtool accepts the alert rules and every PromQL expression of the dashboards;
- charts/platform/metrics-used.txt is rewritten with the metric names dashboards and rules use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "platform"
K8S = ROOT / "k8s"
WANTED_KUBE = "1.33"

# Metric families the services export today (charts/README.md); dashboards and rules use no other.
EXPORTED = {
    "http_requests_total", "http_request_errors_total", "http_request_duration_seconds",
    "db_pool_connections", "outbox_backlog", "outbox_oldest_age_seconds", "outbox_published_total",
    "outbox_publish_failures_total", "kafka_consumer_lag", "kafka_consumed_total",
    "kafka_handler_failures_total", "kafka_dead_letters_total", "catalog_resources",
    "catalog_objections_overdue", "authorization_plan_filings_overdue", "authorization_sandbox_alerts_unmatched",
    # shared/store/src/recent.rs
    "db_recent_rows_total",
    # services/sandbox-gateway/src/metrics.rs
    "sandbox_queries_total", "sandbox_refusals_total", "sandbox_query_duration_seconds",
    "sandbox_check_duration_seconds", "sandbox_suppressed_groups_total", "sandbox_refusal_bursts_total",
    "sandbox_loaded_rows_total", "sandbox_loads_total", "sandbox_audit_chain_broken", "sandbox_open_workspaces",
}
HISTOGRAMS = {"http_request_duration_seconds", "sandbox_query_duration_seconds", "sandbox_check_duration_seconds"}

# Custom resources: no schema in kubernetes-validate, so checked for the fields we rely on.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus operator CRD",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "Prometheus operator CRD",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "Strimzi CRD",
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): "Strimzi CRD",
    ("kafka.strimzi.io/v1beta2", "Kafka"): "Strimzi CRD",
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): "Strimzi CRD",
    ("postgresql.cnpg.io/v1", "Cluster"): "CloudNativePG CRD",
}


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.skipped: dict[str, str] = {}

    def ok(self, cond: object, what: str) -> bool:
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"  FAIL {what}")
        return bool(cond)


C = Checks()


class UniqueKeyLoader(yaml.SafeLoader):
    """Refuses duplicate keys, which the API server would reject or silently collapse."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_docs(text: str, where: str) -> list[dict]:
    try:
        return [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d]
    except yaml.YAMLError as e:
        C.ok(False, f"{where}: not valid YAML: {e}")
        return []


def dig(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def kube_version() -> str:
    versions = kubernetes_validate.utils.all_versions()
    have = {kubernetes_validate.utils.major_minor(v) for v in versions}
    return WANTED_KUBE if WANTED_KUBE in have else kubernetes_validate.utils.major_minor(versions[-1])


KUBE = ""


def validate_object(obj: dict, where: str) -> None:
    name = f"{where}: {obj.get('kind')}/{dig(obj, 'metadata', 'name')}"
    if not C.ok(obj.get("apiVersion") and obj.get("kind") and dig(obj, "metadata", "name"),
                f"{name}: apiVersion, kind and metadata.name are required"):
        return
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_KINDS:
        C.skipped[obj["kind"]] = f"{CRD_KINDS[key]}: no schema offline, required fields checked instead"
        check_custom_resource(obj, name)
        return
    try:
        kubernetes_validate.validate(obj, KUBE, strict=True)
        C.ok(True, name)
    except Exception as e:  # ValidationError, SchemaNotFoundError
        msg = getattr(e, "message", None) or str(e)
        path = "/".join(str(p) for p in getattr(getattr(e, "caught", None), "path", []) or [])
        C.ok(False, f"{name}: {msg} {('at ' + path) if path else ''}".strip())


def check_custom_resource(obj: dict, name: str) -> None:
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind == "ServiceMonitor":
        eps = spec.get("endpoints") or []
        C.ok(dig(spec, "selector", "matchLabels"), f"{name}: spec.selector.matchLabels")
        C.ok(eps and all(e.get("port") and e.get("path") == "/metrics" for e in eps), f"{name}: endpoints scrape /metrics by port name")
        C.ok(all(e.get("honorLabels") is True for e in eps), f"{name}: honorLabels keeps the services' own `service` label")
    elif kind == "PrometheusRule":
        groups = spec.get("groups") or []
        C.ok(groups and all(g.get("name") and g.get("rules") for g in groups), f"{name}: spec.groups with rules")
    elif kind == "KafkaTopic":
        C.ok(dig(obj, "metadata", "labels", "strimzi.io/cluster"), f"{name}: strimzi.io/cluster label")
        C.ok(isinstance(spec.get("partitions"), int) and spec["partitions"] > 0, f"{name}: spec.partitions")
        C.ok(isinstance(spec.get("replicas"), int) and spec["replicas"] >= 3, f"{name}: spec.replicas >= 3")
        C.ok(isinstance(dig(spec, "config", "retention.ms"), int), f"{name}: spec.config.retention.ms")
    elif kind == "KafkaUser":
        C.ok(dig(obj, "metadata", "labels", "strimzi.io/cluster"), f"{name}: strimzi.io/cluster label")
        C.ok(dig(spec, "authentication", "type") in {"scram-sha-512", "tls"}, f"{name}: spec.authentication.type")
        acls = dig(spec, "authorization", "acls") or []
        C.ok(dig(spec, "authorization", "type") == "simple" and acls, f"{name}: simple authorization with ACLs")
        C.ok(all(dig(a, "resource", "type") and a.get("operations") for a in acls), f"{name}: every ACL has a resource and operations")
    elif kind == "Kafka":
        C.ok(dig(spec, "kafka", "authorization", "type") == "simple", f"{name}: authorization simple (ACLs enforced)")
        C.ok(dig(spec, "entityOperator", "topicOperator") is not None and dig(spec, "entityOperator", "userOperator") is not None,
             f"{name}: topic and user operators")
    elif kind == "KafkaNodePool":
        C.ok(spec.get("replicas") and spec.get("roles") and spec.get("storage"), f"{name}: replicas, roles, storage")
    elif kind == "Cluster":
        C.ok(isinstance(spec.get("instances"), int) and spec["instances"] >= 1, f"{name}: spec.instances")
        C.ok(dig(spec, "bootstrap", "initdb", "database") and dig(spec, "bootstrap", "initdb", "owner"), f"{name}: bootstrap.initdb database and owner")
        C.ok(dig(spec, "storage", "size"), f"{name}: spec.storage.size")


# ---------------------------------------------------------------------------------------- chart
def chart_values_sets() -> list[tuple[str, dict | None]]:
    sets: list[tuple[str, dict | None]] = [("default values", None)]
    for f in sorted((CHART / "ci").glob("*.yaml")):
        sets.append((f"ci/{f.name}", yaml.safe_load(f.read_text()) or {}))
    return sets


def check_chart(rules_groups: list) -> None:
    print(f"chart {CHART.relative_to(ROOT)} (Kubernetes {KUBE} schemas)")
    with helm.Chart.load(str(CHART)) as chart:
        for label, values in chart_values_sets():
            print(f" {label}")
            report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE}.0")
            problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + [
                {"path": "", "error": e} for e in report.get("errors", [])]
            C.ok(not problems, f"{label}: helm lint: " + "; ".join(f"{m['path']}: {m['error']}" for m in problems))
            try:
                rendered = chart.render(values=values, name="platform", namespace="platform")
            except helm.HelmError as e:
                C.ok(False, f"{label}: render failed: {e}")
                continue
            objs = []
            for template, text in sorted(rendered.items()):
                for doc in load_docs(text, f"{label} {template}"):
                    objs.append(doc)
                    validate_object(doc, label)
            merged = chart.merge_values(values)
            check_rendered(label, objs, merged, rules_groups)


def services_of(values: dict) -> dict:
    out = {}
    for name, raw in (values.get("services") or {}).items():
        raw = raw or {}
        if raw.get("enabled", True) is False:
            continue
        svc = json.loads(json.dumps(values.get("serviceDefaults") or {}))
        for k, v in raw.items():
            svc[k] = {**svc[k], **v} if isinstance(v, dict) and isinstance(svc.get(k), dict) else v
        out[name] = svc
    return out


def check_rendered(label: str, objs: list[dict], values: dict, rules_groups: list) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[dig(o, "metadata", "name")] = o
    C.ok("Secret" not in by_kind, f"{label}: the chart renders no Secret (it only references them)")
    services = services_of(values)
    for name, svc in services.items():
        full = f"platform-{name}"
        where = f"{label}: service {name}"
        dep = dig(by_kind, "Deployment", full)
        if not C.ok(dep, f"{where}: Deployment {full} rendered"):
            continue
        for kind in ("Service", "ServiceAccount", "ConfigMap"):
            C.ok(dig(by_kind, kind, full), f"{where}: {kind} {full} rendered")
        optional = {
            "HorizontalPodAutoscaler": dig(svc, "autoscaling", "enabled"),
            "PodDisruptionBudget": dig(svc, "podDisruptionBudget", "enabled"),
            "NetworkPolicy": dig(values, "networkPolicy", "enabled"),
            "ServiceMonitor": dig(values, "serviceMonitor", "enabled"),
        }
        for kind, wanted in optional.items():
            C.ok(bool(dig(by_kind, kind, full)) == bool(wanted), f"{where}: {kind} rendered exactly when enabled")
        check_deployment(where, dep, svc, values)
        check_config(where, dig(by_kind, "ConfigMap", full) or {})
        if dig(values, "networkPolicy", "enabled"):
            check_network_policy(where, by_kind["NetworkPolicy"][full], svc, values)
    # Ingress: one per host entry that a service routes to, none otherwise.
    hosts_used = {dig(s, "ingress", "host") for s in services.values()} - {None, ""}
    ingresses = by_kind.get("Ingress", {})
    expected = {f"platform-{h}" for h in hosts_used} if dig(values, "ingress", "enabled") else set()
    C.ok(set(ingresses) == expected, f"{label}: Ingress objects {sorted(ingresses)} == {sorted(expected)} (only hosts a service routes to)")
    for ing in ingresses.values():
        paths = [p["path"] for r in dig(ing, "spec", "rules", default=[]) for p in dig(r, "http", "paths", default=[])]
        C.ok(paths and not any(p.startswith(("/metrics", "/healthz", "/readyz")) for p in paths), f"{label}: Ingress routes no internal path")
    # Rules: the PrometheusRule carries exactly the groups of rules/platform-rules.yaml.
    prs = list(by_kind.get("PrometheusRule", {}).values())
    if dig(values, "prometheusRule", "enabled"):
        if C.ok(len(prs) == 1, f"{label}: one PrometheusRule"):
            base = (dig(values, "prometheusRule", "runbookBaseUrl") or "").rstrip("/")
            want = json.loads(json.dumps(rules_groups).replace('"docs/runbooks/', f'"{base}/docs/runbooks/' if base else '"docs/runbooks/'))
            C.ok(prs[0]["spec"]["groups"] == want, f"{label}: PrometheusRule groups == rules/platform-rules.yaml")
    else:
        C.ok(not prs, f"{label}: no PrometheusRule when disabled")
    # Dashboards: labelled for the Grafana sidecar; per-service pages only for services present.
    cms = [o for o in by_kind.get("ConfigMap", {}).values() if dig(o, "metadata", "labels", "grafana_dashboard")]
    if dig(values, "dashboards", "enabled"):
        C.ok(cms and all(dig(o, "metadata", "labels", "grafana_dashboard") == "1" for o in cms), f"{label}: dashboard ConfigMaps labelled grafana_dashboard: \"1\"")
        shipped = {k for o in cms for k in o.get("data", {})}
        for f in (CHART / "dashboards").glob("*.json"):
            svc = f.stem.removeprefix("service-") if f.stem.startswith("service-") else None
            C.ok((f.name in shipped) == (svc is None or svc in services), f"{label}: dashboard {f.name} shipped exactly when its service exists")
        for o in cms:
            for k, text in o.get("data", {}).items():
                try:
                    C.ok(json.loads(text).get("uid"), f"{label}: dashboard {k} has a uid")
                except ValueError as e:
                    C.ok(False, f"{label}: dashboard {k} is not JSON: {e}")
    else:
        C.ok(not cms, f"{label}: no dashboards when disabled")
    rbac = [o for o in objs if o["kind"] in {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}]
    # Each service's RBAC exactly when its rules and the service are there: the sandbox gateway's
    # cluster-wide (a namespace per workspace, issue 4), authorization's in the release's
    # namespace only (the scheduler's Lease, issue 3).
    for svc, key, kinds in (("sandbox-gateway", "sandboxGateway", ("ClusterRole", "ClusterRoleBinding")),
                            ("authorization", "authorization", ("Role", "RoleBinding"))):
        mine = [o for o in rbac if dig(o, "metadata", "name", default="").endswith(svc)]
        wanted = bool(dig(values, key, "rbac", "rules") and svc in services)
        C.ok(sorted(o["kind"] for o in mine) == (sorted(kinds) if wanted else []),
             f"{label}: {svc} RBAC ({', '.join(kinds)}) only with rules and the service")
        if wanted:
            bound = [o for o in mine if o["kind"].endswith("Binding")]
            C.ok(all(dig(b, "subjects", default=[{}])[0].get("name") == dig(b, "metadata", "name")
                     and dig(b, "roleRef", "kind") == kinds[0] for b in bound),
                 f"{label}: {svc} RBAC bound to its own ServiceAccount")
    C.ok(len(rbac) == sum(1 for o in rbac if dig(o, "metadata", "name", default="").endswith(("sandbox-gateway", "authorization"))),
         f"{label}: no other RBAC")


def check_deployment(where: str, dep: dict, svc: dict, values: dict) -> None:
    spec = dep["spec"]
    pod = dig(spec, "template", "spec")
    C.ok(dig(spec, "strategy", "rollingUpdate", "maxUnavailable") == 0, f"{where}: rolling update with maxUnavailable 0")
    C.ok(dig(pod, "securityContext", "runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    C.ok(dig(pod, "securityContext", "seccompProfile", "type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
    C.ok(dig(pod, "serviceAccountName") == dig(dep, "metadata", "name"), f"{where}: own ServiceAccount")
    containers = pod.get("containers") or []
    if not C.ok(len(containers) == 1, f"{where}: one container"):
        return
    c = containers[0]
    sc = c.get("securityContext") or {}
    C.ok(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    C.ok(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
    C.ok(dig(sc, "capabilities", "drop") == ["ALL"], f"{where}: capabilities drop ALL")
    C.ok(dig(c, "resources", "requests") and dig(c, "resources", "limits"), f"{where}: requests and limits")
    C.ok(any(p.get("name") == "http" and p.get("containerPort") == 8080 for p in c.get("ports", [])), f"{where}: port http 8080")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        C.ok(dig(c, probe, "httpGet", "path") == path and dig(c, probe, "httpGet", "port") in ("http", 8080), f"{where}: {probe} on {path}")
    env = {e["name"]: e for e in c.get("env", [])}
    C.ok(dig(env, "PLATFORM__HTTP__BIND", "value") == "0.0.0.0:8080", f"{where}: PLATFORM__HTTP__BIND=0.0.0.0:8080")
    C.ok(dig(env, "PLATFORM_CONFIG", "value", default="").endswith(".toml"), f"{where}: PLATFORM_CONFIG names the mounted TOML")
    C.ok(dig(env, "OTEL_SERVICE_NAME", "value"), f"{where}: OTEL_SERVICE_NAME")
    otlp = dig(values, "telemetry", "otlpEndpoint")
    C.ok(dig(env, "PLATFORM__TELEMETRY__OTLP_ENDPOINT", "value") == (otlp or None), f"{where}: OTLP endpoint in the environment when set")
    db = dig(env, "PLATFORM__DATABASE__URL", "valueFrom", "secretKeyRef") or {}
    C.ok(db.get("name") == dig(svc, "database", "secretName") and "value" not in env.get("PLATFORM__DATABASE__URL", {}),
         f"{where}: database URL from Secret {dig(svc, 'database', 'secretName')}")
    kafka_secret = dig(svc, "kafka", "secretName")
    for var in ("PLATFORM__KAFKA__SASL_USERNAME", "PLATFORM__KAFKA__SASL_PASSWORD"):
        ref = dig(env, var, "valueFrom", "secretKeyRef", "name")
        C.ok(ref == kafka_secret if kafka_secret else var not in env, f"{where}: {var} from Secret {kafka_secret or '(none)'}")
    C.ok(not any("value" in e and re.search(r"postgres(ql)?://[^@\s]*:[^@\s]*@", str(e["value"])) for e in env.values()),
         f"{where}: no credentials in literal env values")


def check_config(where: str, cm: dict) -> None:
    text = dig(cm, "data", "platform.toml")
    if not C.ok(text, f"{where}: ConfigMap holds platform.toml"):
        return
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        C.ok(False, f"{where}: platform.toml is not TOML: {e}")
        return
    known = {"http", "database", "kafka", "telemetry", "auth", "jobs", "scheduler"}
    C.ok(set(cfg) <= known, f"{where}: sections {sorted(cfg)} are known to shared/settings")
    C.ok("url" not in cfg.get("database", {}) and not {"sasl_username", "sasl_password"} & set(cfg.get("kafka", {}))
         and "credentials_key" not in cfg.get("jobs", {}),
         f"{where}: no secret in the ConfigMap")
    C.ok(cfg.get("kafka", {}).get("group_prefix"), f"{where}: kafka.group_prefix set")
    auth = cfg.get("auth", {})
    C.ok(bool(auth.get("jwks_file")) != bool(auth.get("jwks_url")), f"{where}: exactly one of auth.jwks_file / jwks_url")


def check_network_policy(where: str, np: dict, svc: dict, values: dict) -> None:
    spec = np["spec"]
    C.ok(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}, f"{where}: NetworkPolicy governs ingress and egress")
    peers = [p for r in spec.get("ingress", []) for p in r.get("from", [])]
    allowed = list(dig(values, "networkPolicy", "prometheus") or [])
    if dig(values, "ingress", "enabled") and dig(svc, "ingress", "host"):
        allowed += dig(values, "networkPolicy", "ingressController") or []
    C.ok(peers and all(p in allowed for p in peers), f"{where}: ingress only from the ingress controller and Prometheus")
    egress_peers = [p for r in spec.get("egress", []) for p in r.get("to", [])]
    np_v = values["networkPolicy"]
    allowed = (dig(svc, "database", "to") or []) + np_v["kafka"]["to"] + np_v["otlpCollector"]["to"] + np_v["dns"]["to"]
    allowed += [p for r in np_v.get("extraEgress") or [] for p in r.get("to", [])]
    allowed += [p for r in dig(svc, "networkPolicy", "extraEgress") or [] for p in r.get("to", [])]
    C.ok(egress_peers and all(p in allowed for p in egress_peers), f"{where}: egress only to database, Kafka, OTLP collector, DNS")
    C.ok(all(r.get("to") for r in spec.get("egress", [])), f"{where}: no egress rule open to everywhere")


# ------------------------------------------------------------------------------------------ k8s/
def rust_topics() -> list[str]:
    src = (ROOT / "shared" / "events" / "src" / "lib.rs").read_text()
    consts = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', src))
    m = re.search(r"pub const ALL: &\[&str\] = &\[(.*?)\];", src, re.S)
    if not C.ok(m, "shared/events/src/lib.rs: topics::ALL found"):
        return []
    return [consts[n] for n in re.findall(r"\b([A-Z_]+)\b", m.group(1))]


def longest_log_retention_months() -> int:
    """The largest `log_retention_months` of any policy profile (shared/policy/profiles)."""
    def find(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "log_retention_months":
                    yield v.get("value") if isinstance(v, dict) else v
                else:
                    yield from find(v)
    found = [m for p in (ROOT / "shared" / "policy" / "profiles").glob("*.toml") for m in find(tomllib.loads(p.read_text()))]
    C.ok(found, "policy profiles state log_retention_months")
    return max(found, default=6)


def check_k8s_dir(chart_values: dict) -> None:
    print(f"k8s/ (Kubernetes {KUBE} schemas)")
    objs: list[dict] = []
    for f in sorted(K8S.glob("*.yaml")):
        for doc in load_docs(f.read_text(), f"k8s/{f.name}"):
            validate_object(doc, f"k8s/{f.name}")
            objs.append(doc)
    kinds: dict[str, dict[str, dict]] = {}
    for o in objs:
        kinds.setdefault(o.get("kind"), {})[dig(o, "metadata", "name")] = o
    # Topics: exactly topics::ALL and their .dlq.
    topics = rust_topics()
    want = set(topics) | {f"{t}.dlq" for t in topics}
    have = {dig(o, "spec", "topicName") or n for n, o in kinds.get("KafkaTopic", {}).items()}
    C.ok(topics and have == want, f"k8s: KafkaTopics == topics::ALL + .dlq (missing {sorted(want - have)}, extra {sorted(have - want)})")
    months = longest_log_retention_months()
    need_ms = months * 31 * 86_400_000
    for t in ("sandbox.audit.v1", "city.filing.v1", "province.receipt.v1"):
        for name in (t, f"{t}.dlq"):
            ret = dig(kinds, "KafkaTopic", name, "spec", "config", "retention.ms", default=0)
            C.ok(ret >= need_ms, f"k8s: {name} keeps >= {months} months ({need_ms} ms), has {ret}")
    # City users: write filings, read receipts, own group prefix.
    for code in ("610100", "370700"):
        user = dig(kinds, "KafkaUser", f"city-{code}")
        if not C.ok(user, f"k8s: KafkaUser city-{code}"):
            continue
        acls = {(dig(a, "resource", "type"), dig(a, "resource", "name"), dig(a, "resource", "patternType", default="literal")): set(a["operations"])
                for a in dig(user, "spec", "authorization", "acls", default=[])}
        C.ok(acls.get(("topic", "city.filing.v1", "literal"), set()) >= {"Write"} and "Read" not in acls.get(("topic", "city.filing.v1", "literal"), set()),
             f"k8s: city-{code} writes (only) city.filing.v1")
        C.ok(acls.get(("topic", "province.receipt.v1", "literal"), set()) >= {"Read"} and "Write" not in acls.get(("topic", "province.receipt.v1", "literal"), set()),
             f"k8s: city-{code} reads (only) province.receipt.v1")
        C.ok(acls.get(("group", f"city-{code}-", "prefix")) == {"Read"}, f"k8s: city-{code} consumer groups city-{code}-*")
        C.ok(all(k[0] in {"topic", "group", "cluster"} and (k[0] != "topic" or k[1] in {"city.filing.v1", "province.receipt.v1"}) for k in acls),
             f"k8s: city-{code} has no other topic ACL")
    # Ingress paths of the default values cover the public routes of each service's API.
    for name, svc in services_of(chart_values).items():
        api = ROOT / "services" / name / "src" / "api" / "mod.rs"
        if not api.exists():
            api = ROOT / "services" / name / "src" / "api.rs"
        if api.exists() and dig(svc, "ingress", "paths"):
            routes = {"/" + r.split("/")[1] for r in re.findall(r'\.route\("(/[^"]*)"', api.read_text())} - {"/openapi.json"}
            C.ok(routes == set(svc["ingress"]["paths"]),
                 f"chart: services.{name}.ingress.paths {sorted(svc['ingress']['paths'])} == API prefixes {sorted(routes)} (openapi.json stays internal)")
    # What the chart's default values expect: a database cluster and a Kafka user per service.
    clusters = kinds.get("Cluster", {})
    users = kinds.get("KafkaUser", {})
    for name, svc in services_of(chart_values).items():
        secret = dig(svc, "database", "secretName", default="")
        C.ok(secret.removesuffix("-app") in clusters and secret.endswith("-app"),
             f"k8s: service {name}: database Secret {secret} comes from a CloudNativePG Cluster in k8s/")
        ksecret = dig(svc, "kafka", "secretName")
        if ksecret:
            C.ok(any(dig(u, "spec", "authentication", "password", "valueFrom", "secretKeyRef", "name") == ksecret for u in users.values()),
                 f"k8s: service {name}: a KafkaUser takes its password from Secret {ksecret}")


# ------------------------------------------------------------------------------------ Dockerfile
def check_dockerfile() -> None:
    print("Dockerfile")
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", joined, re.M))
    service = args.get("SERVICE")
    C.ok(service, "Dockerfile: ARG SERVICE has a default")
    ignored = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")] \
        if (ROOT / ".dockerignore").exists() else []
    copied = []
    for line in re.findall(r"^COPY (?!--from)(.+)$", joined, re.M):
        parts = line.split()
        for src in parts[:-1]:
            C.ok((ROOT / src).exists(), f"Dockerfile: COPY source {src} exists")
            C.ok(src.rstrip("/") not in ignored, f"Dockerfile: COPY source {src} is not in .dockerignore")
            copied.append(src.rstrip("/"))
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    for member in manifest["workspace"]["members"]:
        C.ok(any(member == c or member.startswith(c + "/") for c in copied), f"Dockerfile: workspace member {member} is copied")
    # Files outside a crate that build scripts read (e.g. proto/ for shared/events).
    for build_rs in ROOT.glob("*/*/build.rs"):
        for rel in re.findall(r'"((?:\.\./)+[^"]+)"', build_rs.read_text()):
            top = (build_rs.parent / rel).resolve().relative_to(ROOT).parts[0]
            C.ok(top in copied, f"Dockerfile: {top}/ (read by {build_rs.relative_to(ROOT)}) is copied")
    m = re.search(r'cargo build --release --locked -p "\$\{SERVICE\}" --bin "\$\{SERVICE\}"', joined)
    C.ok(m, "Dockerfile: builds `-p $SERVICE --bin $SERVICE` in release")
    C.ok(re.search(r'target/release/\$\{SERVICE\}', joined), "Dockerfile: takes target/release/$SERVICE")
    C.ok(re.search(r"^FROM gcr\.io/distroless/cc-debian12:nonroot", joined, re.M) and re.search(r"^USER 65532", joined, re.M),
         "Dockerfile: distroless non-root runtime (uid 65532, as the chart's runAsUser)")
    # The default SERVICE and every service of the chart's defaults are packages with a binary of that name.
    for name in {service} | set(services_of(yaml.safe_load((CHART / "values.yaml").read_text()))):
        check_binary(name)


def check_binary(name: str) -> None:
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    for member in manifest["workspace"]["members"]:
        pkg = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        if pkg.get("package", {}).get("name") != name:
            continue
        bins = {b.get("name") for b in pkg.get("bin", [])}
        implicit = (ROOT / member / "src" / "main.rs").exists()
        C.ok(name in bins or implicit, f"Dockerfile: package {name} ({member}) has binary {name}")
        return
    C.ok(False, f"Dockerfile: no workspace package named {name}")


# ------------------------------------------------------------------------------- PromQL, metrics
GRAFANA_VARS = [(r"\$__rate_interval|\$\{__rate_interval\}", "5m"), (r"\$__interval|\$\{__interval\}", "1m"),
                (r"\$__range|\$\{__range\}", "1h"), (r"\$\{?(\w+)\}?", ".*")]
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for f in sorted((CHART / "dashboards").glob("*.json")):
        d = json.loads(f.read_text())
        stack = list(d.get("panels", []))
        while stack:
            p = stack.pop(0)
            stack.extend(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"{f.name} / {p.get('title')}", t["expr"]))
        for v in dig(d, "templating", "list", default=[]):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.match(r"label_values\((\w+)\s*,", q or "")
            if m:
                out.append((f"{f.name} / variable {v.get('name')}", m.group(1)))
    return out


def metric_names(expr: str) -> set[str]:
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        tail = e[m.end():].lstrip()
        if tail.startswith("(") or m.group(0) in KEYWORDS:
            continue
        if re.match(r"\d", e[m.start() - 1:m.start()] or " "):
            continue
        names.add(m.group(0))
    return names


def family(name: str) -> str:
    for h in HISTOGRAMS:
        if name in {f"{h}_bucket", f"{h}_count", f"{h}_sum"}:
            return h
    return name


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True)


def check_promql(rules_file: Path, rules: dict) -> set[str]:
    print("PromQL")
    r = promtool("check", "rules", str(rules_file))
    C.ok(r.returncode == 0, f"promtool check rules {rules_file.relative_to(ROOT)}: {r.stdout.strip()} {r.stderr.strip()}")
    used: set[str] = set()
    for g in rules["groups"]:
        for rule in g["rules"]:
            used |= metric_names(rule["expr"])
            if "alert" in rule:
                a = rule["alert"]
                url = dig(rule, "annotations", "runbook_url", default="")
                C.ok(url == f"docs/runbooks/{a}.md", f"rule {a}: runbook_url docs/runbooks/{a}.md")
                page = ROOT / "docs" / "runbooks" / f"{a}.md"
                C.ok(page.exists() and all(h in page.read_text() for h in ("## Meaning", "## Check", "## Act")),
                     f"rule {a}: {page.relative_to(ROOT)} exists with Meaning, Check and Act sections")
                C.ok(dig(rule, "labels", "severity") in {"critical", "warning"} and dig(rule, "annotations", "summary"),
                     f"rule {a}: severity and summary")
    exprs = dashboard_exprs()
    C.ok(exprs, "dashboards have PromQL targets")
    doc = {"groups": [{"name": "dashboards", "rules": []}]}
    for i, (where, expr) in enumerate(exprs):
        used |= metric_names(expr)
        plain = expr
        for pattern, repl in GRAFANA_VARS:
            plain = re.sub(pattern, repl, plain)
        doc["groups"][0]["rules"].append({"record": f"dashboard:expr_{i}", "expr": plain})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(doc, f, allow_unicode=True)
    r = promtool("check", "rules", f.name)
    os.unlink(f.name)
    C.ok(r.returncode == 0, f"promtool parses all {len(exprs)} dashboard expressions: {r.stdout.strip()} {r.stderr.strip()}")
    unknown = {n for n in used if family(n) not in EXPORTED}
    C.ok(not unknown, f"dashboards and rules use only exported metrics (unknown: {sorted(unknown)})")
    return used


def main() -> int:
    global KUBE
    KUBE = kube_version()
    if KUBE != WANTED_KUBE:
        print(f"note: kubernetes-validate has no {WANTED_KUBE} schemas; using {KUBE}")
    if not shutil.which("promtool"):
        print("check-k8s: promtool is missing (Debian package prometheus)")
        return 2
    rules_file = CHART / "rules" / "platform-rules.yaml"
    rules = yaml.safe_load(rules_file.read_text())
    check_chart(rules["groups"])
    check_k8s_dir(yaml.safe_load((CHART / "values.yaml").read_text()))
    check_dockerfile()
    used = check_promql(rules_file, rules)
    out = CHART / "metrics-used.txt"
    out.write_text("".join(f"{n}\n" for n in sorted(used)))
    print(f"wrote {out.relative_to(ROOT)} ({len(used)} names)")
    for kind, why in sorted(C.skipped.items()):
        print(f"skipped schema validation of {kind}: {why}")
    if C.failures:
        print(f"\ncheck-k8s: {len(C.failures)} failure(s):")
        for f in C.failures:
            print(f"  - {f}")
    print(f"check-k8s: {C.passed} passed, {len(C.failures)} failed")
    return 1 if C.failures else 0


if __name__ == "__main__":
    sys.exit(main())
