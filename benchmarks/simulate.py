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
    # wall time and this process's CPU time: on a shared machine they part ways
    started, cpu0 = time.perf_counter(), time.process_time()
    workload = load_file(args.workload)
    plan = lab.plan(workload)
    planned, cpu1 = time.perf_counter(), time.process_time()
    chosen = select(registry_for([args.policy]), args.policy)
    run = lab.simulate(plan, chosen)
    ran, cpu2 = time.perf_counter(), time.process_time()
    figures = lab.results(plan, run)
    read, cpu3 = time.perf_counter(), time.process_time()
    transitions = figures["engine"]["actions"] + figures["engine"]["deadlines_fired"]
    print(f"workload {workload.name}: {plan.orders:,} orders, {figures['cases']:,} cases")
    for name, wall, cpu in (
        ("plan", planned - started, cpu1 - cpu0),
        ("run", ran - planned, cpu2 - cpu1),
        ("figures", read - ran, cpu3 - cpu2),
        ("total", read - started, cpu3 - cpu0),
    ):
        print(f"{name:8} wall {wall:7.1f} s   CPU {cpu:7.1f} s")
    for what, seconds in (("wall", ran - planned), ("CPU", cpu2 - cpu1)):
        print(
            f"run by {what} time: cases/s {figures['cases'] / seconds:,.0f}, "
            f"transitions/s {transitions / seconds:,.0f}"
        )
    engine = figures["engine"]
    print(f"({engine['actions']:,} actions, {engine['deadlines_fired']:,} deadlines fired)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
