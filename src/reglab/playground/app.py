"""The playground's web app: a static page, the controls table and training jobs.

    GET  /                      the page (static/index.html)
    GET  /api/controls          every control: name, default, range, meaning
    POST /api/jobs              {"client", "params"} -> {"job"}; 400/422 say why
    GET  /api/jobs/{id}/events  server-sent events: data, frame..., finished
    POST /api/jobs/{id}/save    record a finished job in the run store, as a run of
                                the experiment 'playground' (``reglab run`` re-makes it)

A job's events carry its id; a newer job from the same client (a page) cancels the
older one, whose events then answer 410, so a stale request never draws over a newer
view and a second tab (another client) never touches the first one's jobs.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from reglab.experiments import playground as experiment
from reglab.playground import controls
from reglab.playground.engine import Engine, Job

STATIC = resources.files("reglab.playground") / "static"
EXPERIMENT = experiment.NAME


def _refused(problems: list[tuple[str, str]], status: int) -> JSONResponse:
    errors = [{"control": c, "message": m} for c, m in problems]
    return JSONResponse({"errors": errors}, status_code=status)


def _job(request: Request) -> Job | JSONResponse:
    """Return the job named in the path, or the response that refuses it."""
    engine: Engine = request.app.state.engine
    job_id = request.path_params["job_id"]
    job = engine.jobs.get(job_id)
    if job is None:
        return JSONResponse(
            {"error": f"no job {job_id!r} (unknown or long gone) — start a new one"},
            status_code=404,
        )
    return job


async def index(request: Request) -> FileResponse:
    """Serve the page."""
    del request
    return FileResponse(str(STATIC / "index.html"))


async def list_controls(request: Request) -> JSONResponse:
    """Return the controls table the page builds its widgets from."""
    del request
    return JSONResponse(
        {
            "controls": [c.describe() for c in controls.CONTROLS],
            "max_members": controls.MAX_MEMBERS,
        }
    )


async def start_job(request: Request) -> JSONResponse:
    """Check the settings and queue a job; refuse bad input with its message."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _refused([("request", "the body must be JSON")], 400)
    if not isinstance(body, dict) or not isinstance(body.get("params", {}), dict):
        return _refused(
            [("request", 'the body must be {"client": str, "params": {name: value}}')],
            400,
        )
    try:
        settings = controls.parse(body.get("params", {}))
    except controls.ControlError as e:
        return _refused(e.problems, e.status)
    job = request.app.state.engine.submit(settings, str(body.get("client", "")))
    return JSONResponse({"job": job.id, "members": len(settings.members)}, 202)


async def events(request: Request) -> StreamingResponse | JSONResponse:
    """Stream a job's events as server-sent events until it ends."""
    job = _job(request)
    if isinstance(job, JSONResponse):
        return job
    if job.replaced_by is not None:
        return JSONResponse(
            {"error": f"job {job.id} was replaced by job {job.replaced_by} —"
                      " its frames are stale"},
            status_code=410,
        )  # fmt: skip
    engine: Engine = request.app.state.engine

    async def sse():
        seen = 0
        while True:
            new = await anyio.to_thread.run_sync(engine.wait, job, seen, 1.0)
            for kind, payload in new:
                yield f"event: {kind}\ndata: {json.dumps(payload)}\n\n"
            seen += len(new)
            if job.ended and seen >= len(job.events):
                return
            if await request.is_disconnected():
                return

    return StreamingResponse(
        sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def save_job(job: Job, store_path: str | os.PathLike | None) -> list[str]:
    """Record a finished job as runs of experiment 'playground'; return their ids.

    The Lab records it as ``reglab run playground`` would (one run per seed, the
    group's Result on the first, the claims on each), so the same Config from
    ``reglab show RUN --toml`` finds it in the store instead of training.
    """
    from reglab.lab.runner import Lab
    from reglab.reproduce import describe_devices
    from reglab.store import Store

    cfg, result = job.settings.config(), job.last_frame.result
    result.devices = describe_devices()
    with Store(store_path) as store:
        lab = Lab(store)
        with lab.lock([(EXPERIMENT, cfg)]):
            plan = lab.plan(EXPERIMENT, cfg)
            if plan.cached:  # saved before (or re-made): nothing new to record
                return [plan.runs[s] for s in cfg.seeds]
            plan = lab.plan(EXPERIMENT, cfg, whole=True)  # the job trained every seed
            runs = lab.begin(plan)
            merged = lab.finish(plan, runs, result)
            lab.record_claims(plan, experiment.claims(merged))
    return [r.id for r in runs]


async def save(request: Request) -> JSONResponse:
    """Record a finished job in the run store."""
    job = _job(request)
    if isinstance(job, JSONResponse):
        return job
    if job.status != "finished":
        return JSONResponse(
            {"error": f"job {job.id} is {job.status}; save it once it has finished"},
            status_code=409,
        )
    store_path = request.app.state.store_path
    run_ids = await anyio.to_thread.run_sync(save_job, job, store_path)
    return JSONResponse({"run": run_ids[0], "runs": run_ids, "experiment": EXPERIMENT})


def create_app(
    store_path: str | os.PathLike | None = None, engine: Engine | None = None
) -> Starlette:
    """Return the app; store_path is the run store ``save`` writes to."""
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/api/controls", list_controls),
            Route("/api/jobs", start_job, methods=["POST"]),
            Route("/api/jobs/{job_id}/events", events),
            Route("/api/jobs/{job_id}/save", save, methods=["POST"]),
            Mount("/static", StaticFiles(directory=Path(str(STATIC))), name="static"),
        ]
    )
    app.state.engine = engine or Engine()
    app.state.store_path = store_path
    return app
