"""The policy lab's speed: a workload planned, run through the engine and read back.

Prints the time of each phase, cases per second and transitions per second (engine actions
plus deadlines fired) for the run, as docs/performance.md reports them.

    .venv/bin/python benchmarks/simulate.py examples/workloads/double-11.yaml
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from shouhou.policy.selection import registry_for, select
from shouhou.sim import lab
from shouhou.sim.workload import load_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", type=Path)
    parser.add_argument("--policy", default="tmall-standard")
    args = parser.parse_args()
    started = time.perf_counter()
    workload = load_file(args.workload)
    plan = lab.plan(workload)
    planned = time.perf_counter()
    chosen = select(registry_for([args.policy]), args.policy)
    run = lab.simulate(plan, chosen)
    ran = time.perf_counter()
    figures = lab.results(plan, run)
    read = time.perf_counter()
    transitions = figures["engine"]["actions"] + figures["engine"]["deadlines_fired"]
    run_s = ran - planned
    print(f"workload {workload.name}: {plan.orders:,} orders, {figures['cases']:,} cases")
    print(f"plan {planned - started:.1f} s, run {run_s:.1f} s, figures {read - ran:.1f} s,")
    print(f"total {read - started:.1f} s (CPU {time.process_time():.1f} s)")
    print(f"cases/s {figures['cases'] / run_s:,.0f}, transitions/s {transitions / run_s:,.0f}")
    engine = figures["engine"]
    print(f"({engine['actions']:,} actions, {engine['deadlines_fired']:,} deadlines fired)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
