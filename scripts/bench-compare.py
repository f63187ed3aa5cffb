#!/usr/bin/env python3
"""Compares a `make bench` run (target/bench/latest.json) with the accepted figures
(docs/bench-accepted.json): names every figure that moved by more than its noise, and every
figure that misses its target. Exit 1 when a figure regressed beyond its noise or misses its
target, 0 otherwise (bench.sh prints the report and does not fail on it: these machines are
noisy; a person decides, then refreshes docs/bench-accepted.json with --accept).

    python3 scripts/bench-compare.py target/bench/latest.json docs/bench-accepted.json [--accept]
"""
import json
import sys

# How far a figure may move between two runs on this kind of machine before it is news, as a
# fraction of the accepted value (measured: the spread of repeated runs in docs/capacity.md).
DEFAULT_NOISE = 0.25


def lower_is_better(fig: dict) -> bool:
    target = fig.get("target") or {}
    if "at_most" in target:
        return True
    if "at_least" in target:
        return False
    return fig.get("unit") in ("ms", "s", "ratio")


def meets(fig: dict) -> bool | None:
    target = fig.get("target") or {}
    if "at_most" in target:
        return fig["value"] <= target["at_most"]
    if "at_least" in target:
        return fig["value"] >= target["at_least"]
    return None


def main() -> int:
    run_path, accepted_path = sys.argv[1], sys.argv[2]
    run = json.load(open(run_path, encoding="utf-8"))
    if "--accept" in sys.argv:
        accepted = {"machine": run["machine"], "at": run["at"], "noise": {}, "figures": {}}
        try:
            accepted["noise"] = json.load(open(accepted_path, encoding="utf-8")).get("noise", {})
        except FileNotFoundError:
            pass
        accepted["figures"] = {f["name"]: f["value"] for f in run["figures"]}
        json.dump(accepted, open(accepted_path, "w", encoding="utf-8"), ensure_ascii=False, indent=1, sort_keys=True)
        print(f"bench-compare: {len(run['figures'])} figures accepted into {accepted_path}")
        return 0
    try:
        accepted = json.load(open(accepted_path, encoding="utf-8"))
    except FileNotFoundError:
        print(f"bench-compare: no accepted figures at {accepted_path}; accept this run with --accept")
        return 0
    print(f"bench-compare: this run ({run['machine']}) against the accepted run of {accepted['at']} ({accepted['machine']})")
    bad = 0
    for fig in run["figures"]:
        name, value = fig["name"], fig["value"]
        met = meets(fig)
        if met is False:
            print(f"  MISSES TARGET  {name} = {value:.3g} {fig['unit']} (target {fig['target']})")
            bad += 1
        old = accepted["figures"].get(name)
        if old is None:
            print(f"  new            {name} = {value:.3g} {fig['unit']}")
            continue
        noise = accepted.get("noise", {}).get(name, DEFAULT_NOISE)
        change = (value - old) / old if old else 0.0
        if abs(change) <= noise:
            continue
        worse = change > 0 if lower_is_better(fig) else change < 0
        word = "REGRESSED" if worse else "improved"
        print(f"  {word:<14} {name}: {old:.3g} -> {value:.3g} {fig['unit']} ({change:+.0%}, noise {noise:.0%})")
        bad += worse
    for name in accepted["figures"]:
        if not any(f["name"] == name for f in run["figures"]):
            print(f"  not measured   {name} (BENCH_ONLY?)")
    print(f"bench-compare: {bad} figure(s) need a look" if bad else "bench-compare: every figure within its noise and target")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
