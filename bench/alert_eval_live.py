"""The evaluator's cost in a real control plane: 10 environments × 20 rules, CPU measured from outside.

    .venv/bin/python bench/alert_eval_live.py [--envs 10] [--window 60]

A sandbox project (examples/sandbox.py) with ``--envs`` environments of one instance each, all deployed,
idle. The control plane's CPU time (psutil, user + system) is read over ``--window`` seconds twice, in
alternation: with 20 rules per environment (the 7 shipped ones + 13 of bench/alert_eval.py) and with
none (``default_alerts = false``; the evaluator then has nothing to do). The spec is switched live (the
evaluator reads the file when it changes). The recorder, the supervisor's sampling and the rest run in
both phases, so the difference is the evaluator's.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench"))

from alert_eval import EXTRA_RULES  # noqa: E402
from sandbox import free_port, make_project  # noqa: E402


def cpu_over(proc: psutil.Process, seconds: float) -> float:
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    return (t1.user + t1.system) - (t0.user + t0.system)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=10)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-alerts-live-"))
    project = make_project(tmp)
    envs = ["staging"] + [f"env{k}" for k in range(1, args.envs)]
    base = "".join(f"\n[environments.{e}]\nport = {free_port()}\nreplicas = 1\n" for e in envs[1:])
    base += f'\n[metrics]\nlisten = "127.0.0.1:{free_port()}"\n'
    rules = "".join(f'\n[[alerts]]\nname = "{n}"\nexpr = \'{x}\'\nfor = "{f}"\n' for n, x, f in EXTRA_RULES)
    with_rules = base + rules
    without = base.replace("[metrics]\n", "[metrics]\ndefault_alerts = false\n")
    project.write_spec(replicas=1, extra=with_rules)
    project.commit("v1")
    try:
        project.ok("up", "--detach", timeout=90)
        for e in envs:
            project.ok("deploy", "--env", e, timeout=180)
        pid = project.control_pid()
        assert pid is not None
        proc = psutil.Process(pid)
        spec = project.dir / "shipyard.toml"
        head = spec.read_text()[: -len(with_rules)]
        doc = project.json("alerts")
        assert isinstance(doc, dict)
        print(f"# {platform.python_version()} {platform.machine()}, {psutil.cpu_count()} CPUs, "
              f"{len(envs)} environments deployed (1 instance each), {len(doc['rules'])} rules")
        time.sleep(12)  # a first evaluation and recorder tick with every rule
        results: dict[str, list[float]] = {"rules": [], "none": []}
        for _ in range(args.rounds):
            for phase, text in (("rules", with_rules), ("none", without)):
                spec.write_text(head + text)
                time.sleep(6)  # the next evaluation picks the file up
                results[phase].append(cpu_over(proc, args.window))
        for phase, cpu in results.items():
            shares = ", ".join(f"{c / args.window * 100:.2f} %" for c in cpu)
            print(f"control plane CPU, {phase:5}: {shares} of one core ({args.window:.0f} s windows)")
        diff = (sum(results["rules"]) - sum(results["none"])) / len(results["rules"]) / args.window * 100
        print(f"evaluator ({len(envs)} × 20 rules every second): {diff:.2f} % of one core")
    finally:
        if project.control_pid():
            project.cli("down", timeout=120)
        project.kill_everything()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
