"""Playground response times through a real uvicorn server, as pages see them.

    python benchmarks/playground.py [--clients 20] [--epochs 1000] [--skip-big]
    python benchmarks/playground.py --engine [--reps 3]

Measures, over HTTP on 127.0.0.1 (the same script runs against the code before the
fair scheduler, e.g. ``PYTHONPATH=/work/main/src``, which ignores the page secret):

1. crowd: N pages send the default setting (``--epochs``) at once; each page's wait
   for its first picture (median, max) and for its finished run (max);
2. big + small: one page trains a big allowed request (2000 points, 128-128, 3000
   epochs); once its first picture is up, a second page sends the small default;
   the small page's wait for its first picture and its finished run;
3. closed tab: the big page closes its event stream mid-run; how long the job goes
   on training (cancel latency, read from the engine) and the next page's wait for
   its first picture.

The first of each shape compiles (or loads from JAX's cache) before timing. The
numbers depend on what else shares the cores: the load average is printed.

``--engine`` times, without HTTP, a job from submit to its first frame after a
changed setting (l2_strength, traced: no recompile) and to the finished 10,000-epoch
post setting, alone and with 7 pins, beside ``reglab run playground``'s training of
the same Config (the same program, without frames) as the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import threading
import time

import httpx

from reglab.placement import claim_cpu_devices

BIG = {"n_train": "2000", "hidden": "128,128", "epochs": "3000"}


def start_server(store: str):
    """Start the playground's app under uvicorn on a free port; return (app, url)."""
    import uvicorn

    from reglab.playground import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return app, f"http://127.0.0.1:{port}"


class Page:
    """One browser tab: its client id, the server's page secret, its timings."""

    def __init__(self, url: str, name: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=None)
        secret = self.http.get("/api/controls").json().get("page_secret", "")
        self.headers = {"X-Reglab-Page": secret, "Origin": url}
        self.name = name
        self.first = self.done = math_nan()
        self.job = ""

    def send(self, params: dict) -> float:
        """POST a job; return the time it was sent."""
        t0 = time.perf_counter()
        reply = self.http.post(
            "/api/jobs",
            json={"client": self.name, "params": params},
            headers=self.headers,
        )
        assert reply.status_code == 202, reply.text
        self.job = reply.json()["job"]
        return t0

    def follow(self, t0: float, stop_after_first: bool = False) -> None:
        """Read the job's events; note when its first frame and its end came."""
        with self.http.stream("GET", f"/api/jobs/{self.job}/events") as events:
            for line in events.iter_lines():
                if line == "event: frame" and self.first != self.first:
                    self.first = time.perf_counter() - t0
                    if stop_after_first:
                        return  # the tab closes: the stream is dropped
                if line in ("event: finished", "event: cancelled", "event: failed"):
                    self.done = time.perf_counter() - t0
                    return


def math_nan() -> float:
    """Return NaN: not measured yet."""
    return float("nan")


def run_page(page: Page, params: dict, first_only: bool = False) -> threading.Thread:
    """Send a job and follow it on a thread of its own."""
    t0 = page.send(params)
    thread = threading.Thread(target=page.follow, args=(t0, first_only))
    thread.start()
    return thread


def crowd(url: str, n: int, params: dict) -> None:
    """N pages at once: each one's wait for its first picture and its end."""
    pages = [Page(url, f"crowd-{i}") for i in range(n)]
    threads = [run_page(p, params) for p in pages]
    for t in threads:
        t.join()
    firsts = [p.first for p in pages]
    dones = [p.done for p in pages]
    print(
        f"crowd of {n}: first picture median {statistics.median(firsts):.2f} s,"
        f" max {max(firsts):.2f} s; finished max {max(dones):.2f} s"
    )


def big_and_small(url: str, small: dict) -> None:
    """A small page's waits while a big page trains."""
    big = Page(url, "big")
    thread = run_page(big, BIG)
    while big.first != big.first:
        time.sleep(0.05)
    page = Page(url, "small")
    run_page(page, small).join()
    print(
        f"small page beside a big job: first picture {page.first:.2f} s, finished"
        f" {page.done:.2f} s (the big job: first picture {big.first:.2f} s)"
    )
    thread.join()
    print(f"  the big job alone finished after {big.done:.2f} s")


def closed_tab(app, url: str, small: dict) -> None:
    """A tab closes mid-run: cancel latency and the next page's first picture."""
    big = Page(url, "closing")
    run_page(big, BIG, first_only=True).join()
    closed = time.perf_counter()
    page = Page(url, "next")
    thread = run_page(page, small)
    job = app.state.engine.jobs.get(big.job)
    while job is not None and job.status not in ("cancelled", "finished"):
        time.sleep(0.01)
    stopped = time.perf_counter() - closed
    thread.join()
    print(
        f"closed tab: its job stopped {stopped:.2f} s after the tab closed"
        f" ({job.status if job else '?'}); the next page's first picture after"
        f" {page.first:.2f} s"
    )


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


def engine_times(reps: int) -> None:
    """A moved slider's first boundary and the finished run, through the engine."""
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
        for r in range(reps):
            moved = {**params, "l2_strength": str(0.0025 + 0.0005 * (r + 1))}
            first, total = _job_times(engine, controls.parse(moved), "bench")
            firsts.append(first)
            totals.append(total)
            start = time.perf_counter()
            playground.run(controls.parse(moved).config())
            floors.append(time.perf_counter() - start)
        first, total, floor = (statistics.median(v) for v in (firsts, totals, floors))
        print(f"  moved slider -> first boundary: {first * 1e3:.0f} ms (median of"
              f" {reps})")  # fmt: skip
        print(f"  finished 10,000-epoch post setting: {total:.2f} s")
        print(
            f"  reglab run playground, same Config: {floor:.2f} s: {total / floor:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--epochs", default="1000")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--store", default="/tmp/reglab-bench-playground/runs.sqlite")
    parser.add_argument("--engine", action="store_true", help="engine times only")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    claim_cpu_devices()
    from reglab.placement import configure_xla, enable_compile_cache

    configure_xla()
    enable_compile_cache()
    if args.engine:
        engine_times(args.reps)
        print(f"load average during the run: {os.getloadavg()[0]:.1f}")
        return
    app, url = start_server(args.store)
    small = {"epochs": args.epochs}
    warm = Page(url, "warm")
    for params in (small, *(() if args.skip_big else (BIG,))):  # compile first
        t0 = time.perf_counter()
        run_page(warm, params).join()
        print(f"cold {json.dumps(params)}: {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    run_page(warm, {**small, "l2_strength": "0.003"}).join()
    alone = time.perf_counter() - t0
    print(f"warm {json.dumps(small)} alone: {alone:.2f} s")
    with contextlib.suppress(ImportError):  # the cost model, where the code has one
        from reglab.playground.controls import cost, parse

        for params in (small, BIG):
            print(f"  cost estimate {json.dumps(params)}: {cost(parse(params)):.1f} s")
    crowd(url, args.clients, small)
    if not args.skip_big:
        big_and_small(url, small)
        closed_tab(app, url, small)
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
