#!/usr/bin/env python3
"""Every PromQL expression of the dashboards and alert rules, evaluated against a Prometheus that
scrapes the running platform (issue 20): what an SRE sees, not only what promtool parses.

Run by scripts/check-dashboards.sh (which starts the platform and a Prometheus for it; `make test`
runs that) and by `make observe` (against its Prometheus). Python's standard library only.

It fails on:
- an alert rule Prometheus did not load, or whose evaluation fails (health not `ok`), or fewer
  rules loaded than charts/platform/rules/platform-rules.yaml declares;
- an expression Prometheus refuses (a parse error);
- a dashboard expression with an empty result: the panel would show "No data" instead of a value;
- a metric a panel reads that has no series at all (a panel showing 0 through a fallback may
  still read a misspelt metric);
- a metric an alert reads (selector with its label matchers) that has no series: the alert could
  never fire;
unless the metric without series is in ALLOWED below, with the reason it legitimately appears only
after an event.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "platform"
RULES = CHART / "rules" / "platform-rules.yaml"

# Selectors (as an expression writes them) or metric names whose series appear only once something
# happened, each with why: a panel or an alert reading one of these may be empty on a platform that
# just started. Panels do better to show 0 (`or on (...) 0 * ...`, see the dashboards' error panels).
ALLOWED = {
    "http_request_errors_total":
        "created per route and class at its first 4xx or 5xx: none since start is the healthy case; the error "
        "panels then show 0 through their fallback on http_requests_total, and PlatformHighErrorRatio is rightly empty",
    "sandbox_refusals_total":
        "created per check and rule at the first refused query; the panel shows `none` at 0 until then",
}

# Grafana's variables as a panel would have them: a rate window that holds several 1 s scrapes,
# every service.
GRAFANA_VARS = [(r"\$__rate_interval|\$\{__rate_interval\}", "1m"), (r"\$__interval|\$\{__interval\}", "15s"),
                (r"\$__range|\$\{__range\}", "1h"), (r"\$\{?(\w+)\}?", ".*")]
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "atan2"}
# A string, a label-matcher block, a range, or a name with its matchers.
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{[^}]*\}|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\s*(?P<matchers>\{[^}]*\})?')


def grafana(expr: str) -> str:
    for pattern, repl in GRAFANA_VARS:
        expr = re.sub(pattern, repl, expr)
    return expr


def selectors(expr: str) -> list[tuple[str, str]]:
    """The vector selectors of `expr`: (metric name, selector text with its matchers)."""
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    out = []
    for m in TOKEN.finditer(e):
        name = m.group("name")
        if not name or name.lower() in KEYWORDS or e[m.end():].lstrip().startswith("("):
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # a number's exponent or a duration's unit
        out.append((name, name + (m.group("matchers") or "")))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expression) of every panel target and every label_values variable."""
    found = []

    def walk(dashboard: str, panels: list) -> None:
        for p in panels:
            walk(dashboard, p.get("panels", []))
            found.extend((f"{dashboard} / {p.get('title')}", t["expr"]) for t in p.get("targets", []) if t.get("expr"))

    for f in sorted((CHART / "dashboards").glob("*.json")):
        d = json.loads(f.read_text())
        walk(f.name, d.get("panels", []))
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            m = re.match(r"label_values\((\w+)\s*,\s*(\w+)\)", (q.get("query") if isinstance(q, dict) else q) or "")
            if m:
                found.append((f"{f.name} / variable {v.get('name')}", f"group by ({m.group(2)}) ({m.group(1)})"))
    return found


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, **params: str) -> dict:
        q = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400 / 422: the expression is refused; the body says why
            return json.load(e)

    def query(self, expr: str) -> tuple[list | None, str]:
        """The result vector, or None and the error."""
        r = self.get("/api/v1/query", query=expr)
        if r.get("status") != "success":
            return None, f"{r.get('errorType')}: {r.get('error')}"
        return r["data"]["result"], ""

    def wait_ready(self, scrapes: int, timeout: float) -> str:
        """Waits until every target is up with `scrapes` scrapes and every rule was evaluated."""
        deadline = time.time() + timeout
        why = "no answer"
        while time.time() < deadline:
            try:
                targets = self.get("/api/v1/targets")["data"]["activeTargets"]
                rules = [r for g in self.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
                fewest, _ = self.query("min(count_over_time(up[5m]))")
                down = [t["scrapeUrl"] for t in targets if t["health"] != "up"]
                waiting = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001")]
                have = int(float(fewest[0]["value"][1])) if fewest else 0
                if targets and not down and not waiting and have >= scrapes:
                    return ""
                why = f"targets down {down}, scrapes {have}/{scrapes}, rules not yet evaluated {waiting}"
            except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
                why = str(e)
            time.sleep(0.5)
        return why


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    ap.add_argument("--scrapes", type=int, default=3, help="scrapes of every target to wait for")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for them")
    args = ap.parse_args()
    prom = Prometheus(args.prometheus)
    failures: list[str] = []
    allowed: list[str] = []
    used: set[str] = set()

    not_ready = prom.wait_ready(args.scrapes, args.timeout)
    if not_ready:
        print(f"check-dashboards: Prometheus at {args.prometheus} is not ready: {not_ready}")
        return 2

    def empty_metrics(found: list[tuple[str, str]], matchers: bool = True) -> list[str]:
        """The selectors (or, without `matchers`, the metric names) of `found` that match no series."""
        wanted = dict.fromkeys(sel if matchers else name for name, sel in found)
        return [sel for sel in wanted if not (prom.query(f"count({sel})")[0] or [])]

    def allowance(selector: str) -> str | None:
        key = selector if selector in ALLOWED else selector.split("{")[0]
        if key in ALLOWED:
            used.add(key)
        return ALLOWED.get(key)

    def excuse(where: str, missing: list[str], what: str) -> None:
        reasons = [allowance(s) for s in missing]
        if missing and all(reasons):
            allowed.append(f"{where}: {what}: {', '.join(missing)}")
        else:
            failures.append(f"{where}: {what}" + (f"; no series: {', '.join(missing)}" if missing else ""))

    print("Dashboards")
    exprs = dashboard_exprs()
    for where, expr in exprs:
        plain = grafana(expr)
        result, error = prom.query(plain)
        if result is None:
            failures.append(f"{where}: refused: {error}\n      {plain}")
        elif not result:
            excuse(where, empty_metrics(selectors(plain)), "no data")
        elif missing := empty_metrics(selectors(plain), matchers=False):
            excuse(where, missing, f"{len(result)} series, but it reads metrics without series")
        else:
            print(f"  ok  {len(result):3} series  {where}")

    print("Alert rules")
    declared = len(re.findall(r"^\s*- (?:alert|record):", RULES.read_text(), re.M))
    rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    if len(rules) != declared:
        failures.append(f"{RULES.relative_to(ROOT)}: {declared} rules declared, Prometheus loaded {len(rules)}")
    for rule in rules:
        where = f"rule {rule['name']}"
        if rule.get("health") != "ok":
            failures.append(f"{where}: health {rule.get('health')}: {rule.get('lastError')}")
            continue
        result, error = prom.query(rule["query"])
        if result is None:
            failures.append(f"{where}: refused: {error}")
            continue
        missing = empty_metrics(selectors(rule["query"]))
        if missing:
            excuse(where, missing, "reads metrics without series")
        else:
            print(f"  ok  {rule.get('state', 'recording'):8}  {where}")

    for a in allowed:
        print(f"  allowed  {a}")
    for key in sorted(ALLOWED):
        print(f"  allow-list {key}: {ALLOWED[key] if key in used else 'not needed this time'}")
    for f in failures:
        print(f"  FAIL  {f}")
    print(f"check-dashboards: {len(exprs)} dashboard expressions, {len(rules)} alert rules; "
          f"{len(allowed)} allowed before their first event, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
