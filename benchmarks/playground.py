"""Playground response times, warm: a moved slider's first boundary, the finished run.

    python benchmarks/playground.py [--reps 3]

Times a job from submit to its first frame after a changed setting (l2_strength,
traced: no recompile) and to the finished 10,000-epoch post setting, through the
engine the web app uses (without HTTP), alone and with 7 pins (8 members), and as
the floor, in the same run, ``reglab run playground``'s training of the same Config
(the same program, without frames). The issue's targets: first boundary < 1 s,
finished < 3 s on the 2-core machine; the numbers depend on what else shares the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from reglab.placement import claim_cpu_devices


def _job_times(engine, settings, client: str) -> tuple[float, float]:
    """Return (seconds to the first frame, seconds to finished) of one job."""
    start = time.perf_counter()
    job = engine.submit(settings, client)
    first, seen = None, 0
    while True:
        new = engine.wait(job, seen, 1.0)
        seen += len(new)
        for kind, _ in new:
            if kind == "frame" and first is None:
                first = time.perf_counter() - start
            if kind in ("finished", "failed", "cancelled"):
                assert kind == "finished", new[-1]
                return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    claim_cpu_devices()
    from reglab.placement import configure_xla, enable_compile_cache

    configure_xla()
    enable_compile_cache()
    from reglab.experiments import playground
    from reglab.playground import controls
    from reglab.playground.engine import Engine

    engine = Engine()
    pins = ";".join(f"l2_strength:{0.001 * k:g}" for k in range(7))
    for what, params in (("live setting alone", {}), ("with 7 pins", {"pins": pins})):
        t0 = time.perf_counter()
        _job_times(engine, controls.parse(params), "bench")  # compiles or loads
        print(f"{what}: cold job (compile + run) {time.perf_counter() - t0:.2f} s")
        firsts, totals, floors = [], [], []
        for r in range(args.reps):
            moved = {**params, "l2_strength": str(0.0025 + 0.0005 * (r + 1))}
            first, total = _job_times(engine, controls.parse(moved), "bench")
            firsts.append(first)
            totals.append(total)
            start = time.perf_counter()
            playground.run(controls.parse(moved).config())
            floors.append(time.perf_counter() - start)
        first, total, floor = (statistics.median(v) for v in (firsts, totals, floors))
        print(f"  moved slider -> first boundary: {first * 1e3:.0f} ms (median of"
              f" {args.reps})")  # fmt: skip
        print(f"  finished 10,000-epoch post setting: {total:.2f} s")
        print(
            f"  reglab run playground, same Config: {floor:.2f} s: {total / floor:.2f}x"
        )
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
