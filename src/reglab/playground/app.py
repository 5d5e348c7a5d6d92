"""The playground's web app: a static page, the controls table and training jobs.

    GET  /                      the page (static/index.html)
    GET  /api/controls          every control: name, default, range, meaning; the
                                page secret and this run of the server's id
    POST /api/jobs              {"client", "params"} -> {"job"}; 400/422 say why
    GET  /api/jobs/{id}/events  server-sent events: status, data, frame..., finished
    POST /api/jobs/{id}/save    {"client", "params"}: record the finished job in the
                                run store, as a run of the experiment 'playground'
                                (``reglab run`` re-makes it), if it trained exactly
                                the settings the page shows

``guard.Guard`` stands in front of every route (hosts, token, origin, page secret,
JSON bodies, sizes). A job's id is 96 random bits and its events carry it; a newer
job of the same client (a page) replaces the older, whose events then answer 410, so
a stale request never draws over a newer view and a second tab (another client)
never touches the first one's jobs. A job whose page closes its event stream stops.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
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
from reglab.playground import controls, guard
from reglab.playground.engine import Engine, Job

STATIC = resources.files("reglab.playground") / "static"
EXPERIMENT = experiment.NAME
CLIENT = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a page's random id


def _refused(problems: list[tuple[str, str]], status: int) -> JSONResponse:
    errors = [{"control": c, "message": m} for c, m in problems]
    return JSONResponse({"errors": errors, "error": errors[0]["message"]}, status)


def _error(status: int, message: str, reason: str = "") -> JSONResponse:
    return JSONResponse({"error": message, "reason": reason}, status_code=status)


def _job(request: Request) -> Job | JSONResponse:
    """Return the job named in the path, or the response that refuses it."""
    engine: Engine = request.app.state.engine
    job_id = request.path_params["job_id"]
    job = engine.jobs.get(job_id)
    if job is None:
        return _error(
            404,
            f"no job {job_id[:40]!r} on this server (unknown, long gone, or the"
            " server restarted) — run it again",
            "unknown_job",
        )
    return job


async def _body(request: Request) -> tuple[str, dict[str, Any]] | JSONResponse:
    """Return a state-changing request's (client, params), or its refusal."""
    try:
        body = guard.loads(await request.body())
    except ValueError as e:
        return _refused([("request", str(e))], 400)
    shape = 'the body must be {"client": str, "params": {name: value}}'
    if not isinstance(body, dict) or set(body) - {"client", "params"}:
        return _refused([("request", f"{shape}, nothing else")], 400)
    client, params = body.get("client"), body.get("params", {})
    if not isinstance(client, str) or not CLIENT.fullmatch(client):
        return _refused(
            [("request", f"{shape}: client is 1 to 64 letters, digits, _ or -")], 400
        )
    scalar = (str, int, float)
    if not isinstance(params, dict) or not all(
        isinstance(v, scalar) and not isinstance(v, bool) for v in params.values()
    ):
        return _refused([("request", f"{shape}: each value a string or number")], 400)
    return client, params


async def index(request: Request) -> FileResponse:
    """Serve the page."""
    del request
    return FileResponse(str(STATIC / "index.html"))


async def list_controls(request: Request) -> JSONResponse:
    """Return the controls table the page builds its widgets from.

    A page asks again now and then with ``?client=``: it is still there, so its
    finished jobs are kept (and it learns whether the server restarted).
    """
    client = request.query_params.get("client", "")
    if CLIENT.fullmatch(client):
        request.app.state.engine.touch(client)
    return JSONResponse(
        {
            "controls": [c.describe() for c in controls.controls()],
            "max_members": controls.MAX_MEMBERS,
            "groups": controls.GROUPS,
            "budget_s": controls.BUDGET_S,
            "server": request.app.state.server_id,
            # the page sends it back on each change; no other origin can read it
            "page_secret": request.app.state.page_secret,
        }
    )


async def start_job(request: Request) -> JSONResponse:
    """Check the settings and queue a job; refuse bad input with its message."""
    got = await _body(request)
    if isinstance(got, JSONResponse):
        return got
    client, params = got
    try:
        settings = controls.parse(params)
    except controls.ControlError as e:
        return _refused(e.problems, e.status)
    job = request.app.state.engine.submit(settings, client)
    return JSONResponse(
        {
            "job": job.id,
            "members": len(settings.members),
            "estimate_s": round(controls.cost(settings), 1),
        },
        202,
    )


async def events(request: Request) -> StreamingResponse | JSONResponse:
    """Stream a job's events as server-sent events until it ends (or the page goes)."""
    job = _job(request)
    if isinstance(job, JSONResponse):
        return job
    if job.replaced_by is not None:
        return _error(
            410, f"job {job.id} was replaced by job {job.replaced_by} — its frames are"
            " stale", "replaced",
        )  # fmt: skip
    engine: Engine = request.app.state.engine
    engine.opened(job)

    async def sse():
        # Starlette cancels this when the page disconnects: ``finally`` then tells
        # the engine, which stops a job nobody watches at its next chunk.
        try:
            seen = 0
            while True:
                new = await anyio.to_thread.run_sync(
                    engine.wait, job, seen, 0.5, abandon_on_cancel=True
                )
                for kind, payload in new:
                    yield f"event: {kind}\ndata: {json.dumps(payload)}\n\n"
                if not new:  # a comment line: the connection is alive, still waiting
                    yield ": waiting\n\n"
                seen += len(new)
                if job.ended and seen >= len(job.events):
                    return
        finally:
            engine.closed(job)

    return StreamingResponse(
        sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def mismatch(job: Job, shown: controls.Settings) -> str | None:
    """Return how the page's settings differ from what job trained, or None."""
    trained = job.settings
    if shown.config() == trained.config() and shown.extra() == trained.extra():
        return None
    diff = [
        f"{k}: page {shown.page[k]}, job {trained.page[k]}"
        for k in shown.page
        if shown.page[k] != trained.page[k]
    ]
    if len(shown.members) != len(trained.members):
        diff.append(f"members: page {len(shown.members)}, job {len(trained.members)}")
    else:
        diff += [
            f"{k}{f' (pin {m})' if m else ''}: page {a[k]}, job {b[k]}"
            for m, (a, b) in enumerate(zip(shown.members, trained.members, strict=True))
            for k in a
            if a[k] != b[k]
        ]
    return "; ".join(diff[:4]) or "the settings differ"


def save_job(job: Job, store_path: str | os.PathLike | None) -> list[str]:
    """Record a finished job as runs of experiment 'playground'; return their ids.

    The Lab records it as ``reglab run playground`` would (one run per seed, the
    group's Result on the first, the claims on each), so the same Config from
    ``reglab show RUN --toml`` finds it in the store instead of training. The runs'
    start and end are the job's training's.
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
            # the runs began and ended when the job trained, not when it was saved;
            # the store has no public setter for its times yet (a note for its owner)
            with store._write() as db:
                db.executemany(
                    "UPDATE runs SET started_utc = ?, ended_utc = ? WHERE id = ?",
                    [(job.started_utc, job.ended_utc, r.id) for r in runs],
                )
    return [r.id for r in runs]


async def save(request: Request) -> JSONResponse:
    """Record a finished job in the run store, if it is what the page shows."""
    job = _job(request)
    if isinstance(job, JSONResponse):
        return job
    got = await _body(request)
    if isinstance(got, JSONResponse):
        return got
    client, params = got
    request.app.state.engine.touch(client)
    if client != job.client:
        return _error(
            403, f"job {job.id} belongs to another page — save your own", "not_yours"
        )
    if job.status != "finished":
        return _error(
            409, f"job {job.id} is {job.status}; save it once it has finished",
            "not_finished",
        )  # fmt: skip
    try:
        shown = controls.parse(params)
    except controls.ControlError as e:
        return _refused([("request", f"the page's settings are refused ({e}) —"
                          " fix them and run again before saving")], 409)  # fmt: skip
    if job.settings.extra():
        names = sorted(job.settings.extra())
        return _error(
            409,
            f"settings {names} are not fields of the playground experiment's Config"
            " yet, so reglab run could not re-make this run — set them to their"
            " defaults to save",
            "not_in_config",
        )
    differs = mismatch(job, shown)
    if differs:
        return _error(
            409,
            f"job {job.id} trained other settings than the page shows ({differs}) —"
            " wait for the page's own job to finish, then save",
            "mismatch",
        )
    store_path = request.app.state.store_path
    run_ids = await anyio.to_thread.run_sync(save_job, job, store_path)
    return JSONResponse({"run": run_ids[0], "runs": run_ids, "experiment": EXPERIMENT})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer Starlette's own refusals (404 path, 405 method) as JSON, like ours."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path[:80]}"
    return _error(exc.status_code, f"{where}: {exc.detail}", "http")


def create_app(
    store_path: str | os.PathLike | None = None,
    engine: Engine | None = None,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
) -> Starlette:
    """Return the app; store_path is the run store ``save`` writes to.

    host: the address it is bound to (its Host allow-list); token: the access token
    every request must carry (``serve`` makes one for a non-loopback host).
    """
    app = Starlette(
        exception_handlers={HTTPException: _http_error},
        routes=[
            Route("/", index),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/api/controls", list_controls),
            Route("/api/jobs", start_job, methods=["POST"]),
            Route("/api/jobs/{job_id}/events", events),
            Route("/api/jobs/{job_id}/save", save, methods=["POST"]),
            Mount("/static", StaticFiles(directory=Path(str(STATIC))), name="static"),
        ],
    )
    app.state.engine = engine or Engine()
    app.state.store_path = store_path
    app.state.page_secret = secrets.token_urlsafe(24)
    app.state.server_id = secrets.token_hex(8)  # a restarted server has another
    app.add_middleware(
        guard.Guard,
        hosts=guard.allowed_hosts(host),
        page_secret=app.state.page_secret,
        token=token,
    )
    return app
