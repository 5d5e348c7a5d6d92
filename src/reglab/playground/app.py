"""The playground's web app: a static page, the controls table and training jobs.

    GET  /                      the page (static/index.html)
    GET  /api/controls          every control: name, default, range, meaning
    POST /api/jobs              {"client", "params"} -> {"job"}; 400/422 say why
    GET  /api/jobs/{id}/events  server-sent events: data, frame..., finished
    POST /api/jobs/{id}/save    record a finished job in the run store

A job's events carry its id; a newer job from the same client (a page) cancels the
older one, whose events then answer 410, so a stale request never draws over a newer
view and a second tab (another client) never touches the first one's jobs.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import numpy as np
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

import reglab
from reglab.playground import controls
from reglab.playground.engine import Engine, Job

STATIC = resources.files("reglab.playground") / "static"
EXPERIMENT = "playground"


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


def save_job(job: Job, store_path: str | os.PathLike | None) -> str:
    """Record a finished job as a run of experiment 'playground'; return its id."""
    from reglab.store import Store

    f, p = job.last_frame, job.problem
    config = job.settings.to_config()
    arrays: dict[str, Any] = {
        "x_train": p.x,
        "y_train": p.y,
        "flipped": p.flipped,
        "grid_x": p.grid_x,
        "grid_y": p.grid_y,
        "prob": f.prob.astype(np.float32),  # (members, R, R), seed 0
        "record_epochs": f.record_epochs,
        "train_loss": f.train_loss,  # (seeds, members, r)
        "test_loss": f.test_loss,
        "test_accuracy": f.test_accuracy,  # (seeds, members)
        "train_accuracy": f.train_accuracy,
        "diverged": f.diverged,
        "seeds": np.asarray(p.ensemble.seeds),
        **{f"params_{k}": v for k, v in f.params.items()},
    }
    with Store(store_path) as store:
        run = store.start_run(
            EXPERIMENT, config, p.ensemble.seeds[0], code_version=reglab.__version__
        )
        for m in range(f.test_loss.shape[1]):
            for name, curve in (
                ("train_loss", f.train_loss),
                ("test_loss", f.test_loss),
            ):
                store.log_metrics(
                    run.id, f"member{m}/{name}", curve[:, m].mean(0), f.record_epochs
                )
        store.save_arrays(run.id, "result", arrays)
        info = {
            "test_accuracy": f.test_accuracy.mean(0).tolist(),  # seed mean per member
            "train_accuracy": f.train_accuracy.mean(0).tolist(),
            "final_test_loss": f.test_loss[:, :, -1].mean(0).tolist(),
            "epochs": int(f.epoch),
        }
        store.end_run(run.id, "finished", info=info)
    return run.id


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
    run_id = await anyio.to_thread.run_sync(save_job, job, store_path)
    return JSONResponse({"run": run_id, "experiment": EXPERIMENT})


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
