"""The playground against a real uvicorn server on 127.0.0.1: its API through httpx,
its door (each attack of issue 22 refused), its fairness, its save, and its page in
Chromium with screenshots.

Most jobs have one small page shape (100 epochs, 2-16-16-2, 64 points), so the file
compiles few programs; the settings that vary are traced per member.
"""

import base64
import contextlib
import json
import math
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from reglab import cli, settings
from reglab.experiments import playground
from reglab.playground import controls, create_app, guard
from reglab.playground import serve_url as playground_serve_url
from reglab.playground.engine import GRID, Engine
from reglab.store import Store

SMALL = {"epochs": "100", "hidden": "16,16", "n_train": "64"}
# a longer job of another shape: tens of chunks of ~20 ms, a few seconds in all
BIG = {"epochs": "1000", "hidden": "64,64", "n_train": "2000"}
SHOTS = Path(os.environ.get("REGLAB_SHOTS", "/tmp/reglab-playground-shots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app, port: int | None = None):
    """Serve app with uvicorn on 127.0.0.1 in a thread; yield its URL."""
    import uvicorn

    port = port or _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def page_engine(page) -> Engine:
    return page.app.state.engine


class Page:
    """What a page sends: its client id, the page secret and its own Origin."""

    def __init__(self, url: str, app, client: str = "page-1") -> None:
        self.url, self.client, self.app = url, client, app
        self.http = httpx.Client(base_url=url, timeout=120)
        self.headers = {"X-Reglab-Page": app.state.page_secret, "Origin": url}

    def start(self, params: dict) -> httpx.Response:
        body = {"client": self.client, "params": params}
        return self.http.post("/api/jobs", json=body, headers=self.headers)

    def save(self, job: str, params: dict) -> httpx.Response:
        body = {"client": self.client, "params": params}
        return self.http.post(f"/api/jobs/{job}/save", json=body, headers=self.headers)

    def events(self, job: str, until: str | None = None) -> list[tuple[str, dict]]:
        """Return the job's events (kind, payload) until it ends (or ``until``)."""
        out, kind = [], None
        with self.http.stream("GET", f"/api/jobs/{job}/events") as reply:
            assert reply.status_code == 200, reply.read()
            for line in reply.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    out.append((kind, json.loads(line[len("data: ") :])))
                    if kind == until:
                        break
        return out

    def run(self, params: dict) -> tuple[str, list[tuple[str, dict]]]:
        reply = self.start(params)
        assert reply.status_code == 202, reply.text
        job = reply.json()["job"]
        return job, self.events(job)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return tmp_path_factory.mktemp("store") / "runs.sqlite"


@pytest.fixture(scope="module")
def served(store_path):
    app = create_app(store_path)
    with running(app) as url:
        yield app, url


@pytest.fixture
def page(served):
    app, url = served
    return Page(url, app)


def _runs(store_path) -> int:
    if not Path(store_path).exists():
        return 0
    with Store(store_path) as store:
        return len(store.list_runs())


# --- the controls: one table of settings ----------------------------------------


def test_setting_controls_come_from_the_settings_table(page):
    table = page.http.get("/api/controls").json()
    shown = {c["name"]: c for c in table["controls"]}
    assert [c["name"] for c in table["controls"]] == [
        c.name for c in controls.controls()
    ]
    for row in settings.table():
        if row.name in controls.NOT_HERE or row.name in controls.FOLDED:
            continue
        c = shown[row.name]
        assert (c["meaning"], c["scope"]) == (row.meaning, "setting")
        if row.flag:  # a flag of its own (mixup_per_example): a choice, no range
            assert c["choices"] and c["kind"] == "choice"
            continue
        assert c["low"] >= row.low and (c["high"] or math.inf) <= row.high
    # defaults: the playground experiment's Config (the post's weight-decay row)
    defaults = {c["name"]: c["default"] for c in table["controls"]}
    assert defaults["l2_strength"] == 0.0025 and defaults["hidden"] == "64,64"
    assert defaults["epochs"] == 10_000 and defaults["learning_rate"] == 0.15
    assert defaults["penalty"] == "coupled" and defaults["mask"] == "per_batch"
    # the fix text is the table's
    with pytest.raises(controls.ControlError, match=settings.BY_NAME["p_drop"].fix):
        controls.parse({"p_drop": "1.0"})


@pytest.fixture
def added_row(monkeypatch):
    """A row added to the table, as a registered plug-in's would be."""
    row = settings.Setting(
        "test_jitter", 0.0, "std of Gaussian noise added to each training input",
        "use 0.0 to train on the inputs as they are", low=0.0,
    )  # fmt: skip
    rows = (*settings.table(), row)
    monkeypatch.setattr(settings, "table", lambda: rows)
    return row


def test_a_row_added_to_the_table_appears_with_no_other_edit(page, added_row):
    table = page.http.get("/api/controls").json()
    (c,) = [c for c in table["controls"] if c["name"] == "test_jitter"]
    assert c["meaning"] == added_row.meaning and c["default"] == 0.0
    # no upper bound: a log slider over decades whose left end is 0 (off)
    assert c["scale"] == "log" and c["low"] == 0.0 and c["high"] is None
    assert 0 < c["slider_low"] < c["slider_high"]
    parsed = controls.parse({"test_jitter": "0.2", "pins": "test_jitter:0"})
    assert [m["test_jitter"] for m in parsed.members] == [0.2, 0.0]
    assert parsed.extra() == {"test_jitter": (0.2, 0.0)}
    reply = page.start({**SMALL, "test_jitter": "-1"})
    assert reply.status_code == 422
    (error,) = reply.json()["errors"]
    assert error["control"] == "test_jitter"
    assert "test_jitter must be finite and >= 0, got -1.0" in error["message"]
    assert added_row.fix in error["message"]


# --- jobs --------------------------------------------------------------------------


def test_valid_job_streams_chunks_and_finishes(page):
    job, got = page.run({**SMALL, "pins": "l2_strength:0.01"})
    assert len(job) >= 16  # 96 random bits, URL-safe
    kinds = [k for k, _ in got]
    assert kinds[0] == "status" and kinds[-1] == "finished" and "data" in kinds
    frames = [p for k, p in got if k == "frame"]
    assert len(frames) >= 2  # the first chunk and the last, at least
    assert all(p["job"] == job for _, p in got)
    epochs = [f["epoch"] for f in frames]
    assert epochs == sorted(epochs) and epochs[-1] == 100
    prob = base64.b64decode(frames[-1]["prob"])
    assert len(prob) == 2 * GRID * GRID  # members x grid, a byte per point
    acc = np.array(frames[-1]["test_accuracy"])  # (seeds, members)
    assert acc.shape == (1, 2) and (acc > 0.5).all()


@pytest.mark.parametrize(
    ("params", "status", "control", "message"),
    [
        # the library's own messages (MLPSpec, the settings table, MoonsPreset)
        ({"hidden": "64,0"}, 422, "hidden", r"widths must be positive integers"),
        ({"p_drop": "1.0"}, 422, "p_drop", r"p_drop must be .*\[0, 1\), got 1.0"),
        ({"noise": "-1"}, 422, "noise", r"noise must be a finite std >= 0"),
        ({"learning_rate": "0"}, 422, "learning_rate", r"finite and > 0, got 0.0"),
        # the playground's ranges and parsing
        ({"learning_rate": "5"}, 422, "learning_rate", r"in \[0.0001, 1\] here"),
        ({"hidden": "8,8,8,8,8"}, 422, "hidden", r"1 to 4 widths in \[1, 256\]"),
        ({"n_train": "abc"}, 422, "n_train", r"must be an integer, got 'abc'"),
        ({"epochs": "123"}, 422, "epochs", r"one of \(100, 300"),
        ({"penalty": "l3"}, 422, "penalty", r"one of \('coupled'"),
        ({"pins": "l2_strength:-1"}, 422, "pin 1", r"l2_strength must be finite"),
        ({"n_train": "9" * 5000}, 422, "n_train", r"at most 200 characters"),
        ({"n_train": "9" * 40}, 422, "n_train", r"at most 32 characters"),
        # malformed links
        ({"bogus": "1"}, 400, "bogus", r"unknown setting\(s\) \['bogus'\]"),
        ({"pins": "l2_strength=3"}, 400, "pin 1", r"name:value"),
        ({"pins": ";".join(["l2_strength:0"] * 8)}, 400, "pins", r"at most 7 pins"),
    ],
)
def test_bad_input_is_refused_with_its_message(page, params, status, control, message):
    reply = page.start({**SMALL, **params})
    assert reply.status_code == status
    errors = reply.json()["errors"]
    assert errors[0]["control"] == control
    assert re.search(message, errors[0]["message"]), errors[0]["message"]


def test_a_request_over_the_cost_budget_is_refused_with_its_estimate(page):
    # the issue's: 2000 points, 256x4, 4 seeds, 7 pins held everyone for 284 s
    pins = ";".join(f"l2_strength:{k / 1000}" for k in range(7))
    huge = {"n_train": "2000", "hidden": "256,256,256,256", "seeds": "4",
            "pins": pins, "epochs": "100"}  # fmt: skip
    reply = page.start(huge)
    assert reply.status_code == 422
    message = reply.json()["errors"][0]["message"]
    estimate = float(re.search(r"about ([\d,]+) s of CPU", message)[1].replace(",", ""))
    assert estimate > controls.BUDGET_S == 60
    assert "budget of 60 s" in message
    assert controls.cost(controls.parse({})) < 10  # the post's default: seconds


# --- the door: each attack of issue 22, refused --------------------------------------


def test_cross_site_posts_never_start_jobs_nor_write_runs(served, store_path):
    app, url = served
    before = _runs(store_path)
    http = httpx.Client(base_url=url, timeout=30)
    evil = {"Origin": "http://localhost:9999"}  # another local origin
    body = json.dumps({"client": "x", "params": SMALL})
    # a no-cors fetch with Content-Type text/plain: no page secret, foreign origin
    plain = {**evil, "Content-Type": "text/plain"}
    reply = http.post("/api/jobs", content=body, headers=plain)
    assert reply.status_code == 403 and reply.json()["reason"] == "origin"
    # even with no Origin at all, no page secret: refused
    reply = http.post("/api/jobs", content=body, headers={"Content-Type": "text/plain"})
    assert reply.status_code == 403 and "page secret" in reply.json()["error"]
    # with the secret, text/plain is still no JSON: refused (a preflight needed)
    secret = {"X-Reglab-Page": app.state.page_secret}
    reply = http.post(
        "/api/jobs", content=body, headers={**plain, **secret, "Origin": url}
    )
    assert reply.status_code == 415 and "application/json" in reply.json()["error"]
    # a hidden HTML form
    form = {**evil, "Content-Type": "application/x-www-form-urlencoded"}
    reply = http.post("/api/jobs", content="client=x", headers=form)
    assert reply.status_code == 403
    # blind saves of guessed ids
    for i in range(1, 101):
        reply = http.post(f"/api/jobs/j{i}/save", content=body, headers=plain)
        assert reply.status_code == 403
    # and a cross-origin preflight is refused
    reply = http.options("/api/jobs", headers={**evil, "Access-Control-Request-Method":
                                               "POST"})  # fmt: skip
    assert (
        reply.status_code == 403 and "access-control-allow-origin" not in reply.headers
    )
    assert _runs(store_path) == before


def test_dns_rebinding_host_and_foreign_origin_are_refused(served):
    app, url = served
    http = httpx.Client(base_url=url, timeout=30)
    for path in ("/", "/api/controls", "/static/playground.js"):
        reply = http.get(path, headers={"Host": "evil.example"})
        assert reply.status_code == 403 and reply.json()["reason"] == "host"
        assert "evil.example" in reply.json()["error"]
    assert http.get(
        "/", headers={"Host": f"localhost:{url.rsplit(':', 1)[1]}"}
    ).is_success
    page = Page(url, app)
    page.headers["Origin"] = "http://evil.example"
    reply = page.start(SMALL)
    assert reply.status_code == 403 and "evil.example" in reply.json()["error"]
    page.headers["Origin"] = url
    page.headers["Sec-Fetch-Site"] = "same-site"  # another port of this host
    assert page.start(SMALL).status_code == 403


def test_a_server_on_the_network_requires_its_token(tmp_path):
    token = "t0k3n-for-the-test"
    app = create_app(tmp_path / "runs.sqlite", token=token, engine=Engine(start=False))
    with running(app) as url:
        http = httpx.Client(base_url=url, timeout=30)
        for path in ("/", "/api/controls", "/api/jobs/x/events"):
            reply = http.get(path)
            assert reply.status_code == 403 and "?token=" in reply.json()["error"]
        assert http.get("/?token=wrong").status_code == 403
        reply = http.get(f"/?token={token}")  # the printed URL: a cookie for later
        assert reply.status_code == 200 and "reglab_token" in http.cookies
        assert http.get("/api/controls").status_code == 200  # the cookie
        fresh = httpx.Client(base_url=url, timeout=30)
        auth = {"Authorization": f"token {token}"}
        assert fresh.get("/api/controls", headers=auth).status_code == 200


def test_serve_prints_a_token_url_and_a_warning_off_loopback():
    url, token, warning = playground_serve_url("0.0.0.0", 8765)
    assert token and len(token) >= 24 and url.endswith(f"/?token={token}")
    assert "network" in warning and "0.0.0.0" in warning
    assert playground_serve_url("127.0.0.1", 8765) == (
        "http://127.0.0.1:8765/",
        None,
        "",
    )
    assert playground_serve_url("::1", 8765)[0] == "http://[::1]:8765/"
    assert guard.is_loopback("localhost") and not guard.is_loopback("192.168.1.5")


def test_job_ids_are_unguessable(page):
    ids = {page.start({**SMALL, "l2_strength": str(k / 1000)}).json()["job"]
           for k in range(4)}  # fmt: skip
    assert len(ids) == 4
    for job in ids:  # 96 bits: 16 URL-safe characters
        assert len(job) == 16 and re.fullmatch(r"[A-Za-z0-9_-]+", job)
    assert not ids & {f"j{i}" for i in range(100)}


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (
            b'{"client": "a", "params": {}, "x": "' + b"y" * 70_000 + b'"}',
            413,
            "over the limit of 65,536",
        ),
        (b'{"client": "' + b"c" * 70_000 + b'"}', 413, "over the limit"),
        (
            b'{"client": "a", "params": {"n_train": ' + b"9" * 5000 + b"}}",
            400,
            "a number of 5000 digits",
        ),
        (b"[" * 60_000 + b"]" * 60_000, 413, "over the limit"),
        (b"[" * 20_000, 400, "nests deeper than 8"),
        (b'{"client": "a", "params": {}, "extra": 1}', 400, "nothing else"),
        # brackets inside strings are no nesting: the client id is what is wrong
        (b'{"client": "[[[[[[[[[[\\"{{{{{{{{", "params": {}}', 400, "1 to 64"),
        (b'{"client": "' + b"c" * 100 + b'", "params": {}}', 400, "1 to 64"),
        (b'{"client": "a", "params": {"n_train": [1, 2]}}', 400, "string or number"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"not json", 400, "must be JSON"),
    ],
)
def test_bodies_that_are_too_big_or_deep_get_a_4xx_with_a_message(
    page, content, status, message
):
    headers = {**page.headers, "Content-Type": "application/json"}
    reply = page.http.post("/api/jobs", content=content, headers=headers)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


def test_unknown_paths_and_methods_are_refused_with_a_message(page):
    for method, path, status in (("GET", "/api/nothing", 404),
                                 ("GET", "/api/jobs", 405),
                                 ("GET", "/api/jobs/abc/events", 404)):  # fmt: skip
        reply = page.http.request(method, path)
        assert reply.status_code == status and reply.json()["error"], path


def test_a_chunked_body_is_cut_at_the_limit(page):
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    headers = {**page.headers, "Content-Type": "application/json"}
    reply = page.http.post("/api/jobs", content=chunks(), headers=headers)
    assert reply.status_code == 413


# --- fairness --------------------------------------------------------------------


def watch(page: Page, job: str) -> tuple[threading.Thread, list]:
    """Follow a job's events on a thread (a tab that stays open); return both."""
    got: list = []
    thread = threading.Thread(target=lambda: got.extend(page.events(job)))
    thread.start()
    return thread, got


def test_a_small_job_is_not_stuck_behind_a_big_one(served):
    app, url = served
    big, small = Page(url, app, "big-tab"), Page(url, app, "small-tab")
    small.run(SMALL)  # compiled
    job = big.start(BIG).json()["job"]
    thread, _ = watch(big, job)
    engine_job = app.state.engine.jobs[job]
    while engine_job.last_frame is None:  # compiled, training
        time.sleep(0.01)
    small_job, got = small.run(SMALL)
    assert got[-1][0] == "finished"
    # and it heard that the big one was ahead of it, though the big one was most
    # likely mid-turn (out of the queue) when it came: it was not counted then
    queued = [e for k, e in got if k == "status"][0]
    assert queued == {"job": small_job, "state": "queued", "ahead": 1}
    # the big job is still training: the small one did not wait for its end
    assert engine_job.status == "running"
    assert engine_job.last_frame.epoch < 1000
    app.state.engine.cancel(engine_job, "test over")
    thread.join(30)


def test_a_job_stops_within_a_chunk_when_its_page_closes(served):
    app, url = served
    page = Page(url, app, "closing-tab")
    job = page.start(BIG).json()["job"]
    page.events(job, until="frame")  # the stream closes here: the tab is gone
    closed = time.perf_counter()
    engine_job = app.state.engine.jobs[job]
    while engine_job.status not in ("cancelled", "finished"):
        assert time.perf_counter() - closed < 10
        time.sleep(0.01)
    assert engine_job.status == "cancelled"
    assert "closed its event stream" in engine_job.stop
    assert engine_job.last_frame.epoch < 1000  # it did not train on to the end


def test_one_job_per_page_a_newer_one_replaces_it(served):
    app, url = served
    a, b = Page(url, app, "tab-a"), Page(url, app, "tab-b")
    older = a.start(BIG).json()["job"]
    other_tab = b.start(SMALL).json()["job"]
    newer = a.start(SMALL).json()["job"]
    stale = a.http.get(f"/api/jobs/{older}/events")
    assert stale.status_code == 410 and f"replaced by job {newer}" in stale.text
    for page, job in ((b, other_tab), (a, newer)):
        got = page.events(job)
        assert got[-1][0] == "finished" and {p["job"] for _, p in got} == {job}
    assert app.state.engine.jobs[older].status == "cancelled"


def test_waiting_pages_hear_why():
    engine = Engine(start=False)  # queue first, so the order is certain
    app = create_app(engine=engine)
    with running(app) as url:
        pages = [Page(url, app, f"queue-{i}") for i in range(2)]
        jobs = [p.start(SMALL).json()["job"] for p in pages]
        engine.start()
        statuses = [[e for k, e in p.events(j) if k == "status"]
                    for p, j in zip(pages, jobs, strict=True)]  # fmt: skip
    assert statuses[0][0] == {"job": jobs[0], "state": "queued", "ahead": 0}
    assert statuses[1][0] == {"job": jobs[1], "state": "queued", "ahead": 1}
    # a new engine has compiled nothing: the first page hears it compiles, and how
    # long that took the last time (a guess the first time)
    (compiling,) = [s for s in statuses[0] if s["state"] == "compiling"]
    assert compiling["members"] == 1 and compiling["estimate_s"] > 0
    assert all(s["state"] != "compiling" for s in statuses[1])


# --- save saves what the page shows ---------------------------------------------


def _main(capsys, *argv):
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def test_saved_job_is_remade_by_reglab_run_from_the_store(
    page, store_path, tmp_path, capsys
):
    params = {**SMALL, "pins": "l2_strength:0"}
    job, got = page.run(params)
    saved_at = datetime.now(UTC).isoformat()
    reply = page.save(job, params)
    assert reply.status_code == 200 and reply.json()["experiment"] == "playground"
    run_id = reply.json()["run"]
    assert page.save(job, params).json()["run"] == run_id  # once
    with Store(store_path) as store:
        run = store.get(run_id)
        assert run.experiment == "playground" and run.status == "finished"
        assert run.config["epochs"] == 100
        assert run.config["l2_strengths"] == [0.0025, 0.0]
        saved = store.load_arrays(run_id, "result")
    engine_job = page_engine(page).jobs[job]
    assert (run.started_utc, run.ended_utc) == (
        engine_job.started_utc,
        engine_job.ended_utc,
    )  # the training's times, not the save's
    assert run.started_utc < run.ended_utc < saved_at
    assert saved["prob"].shape == (1, 2, GRID, GRID)  # (seeds, members, R, R)
    assert saved["params_W1"].shape == (1, 2, 2, 16)
    where = ["--store", str(store_path), "--out", str(tmp_path / "out")]
    toml = _main(capsys, "show", run_id, "--toml", "--store", str(store_path))
    (tmp_path / "page.toml").write_text(toml)
    remade = ["run", "playground", "-c", str(tmp_path / "page.toml"), "--json"]
    remade = json.loads(_main(capsys, *remade, "--no-progress", "--jobs", "1", *where))
    assert not remade[0]["trained"] and remade[0]["runs"] == {"0": run_id}
    # and had it not been stored, reglab run would have trained the same numbers
    fresh = playground.run(controls.parse(params).config())
    for key, value in fresh.arrays.items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)


def test_save_refuses_a_job_that_is_not_what_the_page_shows(served, store_path):
    app, url = served
    page, other = Page(url, app, "saver"), Page(url, app, "someone-else")
    job, _ = page.run({**SMALL, "l2_strength": "0.004"})
    before = _runs(store_path)
    reply = page.save(job, {**SMALL, "l2_strength": "0.01"})  # the page moved on
    assert reply.status_code == 409 and reply.json()["reason"] == "mismatch"
    assert "l2_strength: page 0.01, job 0.004" in reply.json()["error"]
    reply = page.save(job, {**SMALL, "l2_strength": "-1"})  # a refused value shown
    assert reply.status_code == 409 and "refused" in reply.json()["error"]
    reply = other.save(job, {**SMALL, "l2_strength": "0.004"})  # not its job
    assert reply.status_code == 403 and reply.json()["reason"] == "not_yours"
    assert _runs(store_path) == before
    # 40 newer jobs from other pages do not evict this page's finished job
    for i in range(40):
        Page(url, app, f"crowd-{i}").start({**SMALL, "l2_strength": "0.001"})
    assert page.save(job, {**SMALL, "l2_strength": "0.004"}).status_code == 200


def test_a_restarted_server_refuses_the_old_pages_job_and_secret(tmp_path):
    first = create_app(tmp_path / "runs.sqlite")
    with running(first) as url:
        page = Page(url, first)
        job, _ = page.run(SMALL)
    port = int(url.rsplit(":", 1)[1])
    second = create_app(tmp_path / "runs.sqlite", engine=Engine(start=False))
    with running(second, port):
        reply = page.save(job, SMALL)  # the old page's secret
        assert reply.status_code == 403 and reply.json()["reason"] == "stale_page"
        assert "restarted" in reply.json()["error"]
        page.headers["X-Reglab-Page"] = second.state.page_secret
        reply = page.save(job, SMALL)  # ids are not reused: no other page's job
        assert reply.status_code == 404 and reply.json()["reason"] == "unknown_job"
        assert page.http.get("/api/controls").json()["server"] != first.state.server_id


# --- the page in Chromium -----------------------------------------------------------

RECORD_WAITS = """
window.__waits = [];
new MutationObserver(() => {
  const box = document.getElementById("waiting");
  if (box && !box.hidden) window.__waits.push(box.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true,
                      attributes: true});
"""


def _in_view(page, selector: str) -> bool:
    """Whether the element is wholly inside the viewport."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 0.5
        and box["y"] + box["height"] <= size["height"] + 0.5
    )


def _open(browser, url: str, width: int, height: int, params=SMALL):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.add_init_script(RECORD_WAITS)
    page.goto(url + "/#" + "&".join(f"{k}={v}" for k, v in params.items()))
    page.wait_for_function("document.body.dataset.finished", timeout=120_000)
    return page


def _next_finished(page, before: str) -> str:
    page.wait_for_function(
        f"(document.body.dataset.finished || '{before}') != '{before}'",
        timeout=120_000,
    )
    return page.evaluate("document.body.dataset.finished")


CANVAS = "document.querySelector('#panels canvas').toDataURL()"
CAPTION = "document.querySelector('#panels .desc').textContent"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


@pytest.mark.browser
def test_wide_screen_picture_beside_the_slider_typed_values_and_back(served, browser):
    app, url = served
    page = _open(browser, url, 1366, 900)
    first, before = (
        page.evaluate("document.body.dataset.finished"),
        page.evaluate(CANVAS),
    )
    assert page.evaluate(CAPTION) == "follows the sliders: L2 0.0025"
    # the last slider of the column, moved: the live picture is beside it
    slider = page.locator("#slider-smoothing")
    slider.scroll_into_view_if_needed()
    slider.focus()
    page.keyboard.press("PageUp")  # a tenth of the range: 0.045, in steps of 0.01
    assert _in_view(page, "#slider-smoothing") and _in_view(page, "#panels canvas")
    _shot(page, "wide-1366x900-smoothing.png")
    second = _next_finished(page, first)
    assert page.evaluate(CANVAS) != before  # a new boundary arrived, and it differs
    assert (
        page.evaluate(CAPTION) == "follows the sliders: L2 0.0025, label smoothing 0.05"
    )
    # a typed value moves its slider (0.02 of [0, 0.05] is 400 of 1000)
    page.fill("#input-l2_strength", "0.02")
    page.press("#input-l2_strength", "Enter")
    assert page.input_value("#slider-l2_strength") == "400"
    third = _next_finished(page, second)
    assert _in_view(page, "#slider-l2_strength") and _in_view(page, "#panels canvas")
    _shot(page, "wide-1366x900-l2.png")
    # Back steps through the views: L2 back to 0.0025, then smoothing back to 0
    page.go_back()
    fourth = _next_finished(page, third)
    assert page.input_value("#input-l2_strength") == "0.0025"
    assert (
        page.evaluate(CAPTION) == "follows the sliders: L2 0.0025, label smoothing 0.05"
    )
    page.go_back()
    _next_finished(page, fourth)
    assert page.input_value("#input-smoothing") == "0"
    assert page.evaluate(CAPTION) == "follows the sliders: L2 0.0025"
    # a refused value: marked, and save disarmed (it would save the previous run)
    page.fill("#input-l2_strength", "-1")
    page.press("#input-l2_strength", "Enter")
    page.wait_for_selector("#error-l2_strength:not([hidden])")
    assert "l2_strength must be" in page.text_content("#error-l2_strength")
    assert page.is_disabled("#save")
    page.fill("#input-l2_strength", "0.01")
    page.press("#input-l2_strength", "Enter")
    page.wait_for_function("document.body.dataset.finished")
    page.click("#save")
    page.wait_for_function("document.body.dataset.saved")
    assert "saved as run" in page.text_content("#status")
    # far down the column, the picture is still beside the slider (it stays put)
    slider = page.locator("#slider-noise")
    slider.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 300
    assert _in_view(page, "#slider-noise") and _in_view(page, "#panels canvas")
    _shot(page, "wide-1366x900-noise.png")
    assert not page.errors


@pytest.mark.browser
def test_phone_picture_stays_in_view_while_the_controls_scroll(served, browser):
    app, url = served
    page = _open(browser, url, 390, 844)
    first = page.evaluate("document.body.dataset.finished")
    for name in ("smoothing", "alpha", "noise"):  # down the column of controls
        slider = page.locator(f"#slider-{name}")
        slider.scroll_into_view_if_needed()
        slider.focus()
        page.keyboard.press("PageUp")
        assert _in_view(page, f"#slider-{name}"), name
        assert _in_view(page, "#panels canvas"), name  # pinned at the top
        first = _next_finished(page, first)
        _shot(page, f"phone-390x844-{name}.png")
    assert page.evaluate("window.scrollY") > 600  # the controls did scroll
    assert not page.errors


@pytest.mark.browser
def test_waiting_and_a_restarted_server_are_explained(browser, tmp_path):
    first_app = create_app(tmp_path / "runs.sqlite")  # a new engine: compiles anew
    with running(first_app) as url:
        page = _open(browser, url, 1366, 900)
        waits = page.evaluate("window.__waits")
        assert any(re.fullmatch(r"compiling for 1 member, ~\d+ s", w) for w in waits)
        # another tab trains a long job: this page's next job queues behind it
        other = Page(url, first_app, "other-tab")
        job = other.start(BIG).json()["job"]
        thread, _ = watch(other, job)
        engine_job = first_app.state.engine.jobs[job]
        while engine_job.status == "queued":
            time.sleep(0.01)
        finished = page.evaluate("document.body.dataset.finished")
        page.locator("#slider-l2_strength").focus()
        page.keyboard.press("PageUp")
        page.wait_for_function(  # generous: a loaded 2-core machine
            "window.__waits.some(w => w.startsWith('queued'))", timeout=120_000
        )
        assert page.evaluate("document.querySelector('#picture.dim') !== null")
        _shot(page, "wide-1366x900-waiting.png")
        assert "queued behind 1 job" in page.evaluate("window.__waits")
        _next_finished(page, finished)
        first_app.state.engine.cancel(engine_job, "test over")
        thread.join(30)
    port = int(url.rsplit(":", 1)[1])
    second_app = create_app(tmp_path / "runs.sqlite")
    with running(second_app, port):
        page.click("#save")  # the finished job of the old server
        page.wait_for_selector("#restarted:not([hidden])", timeout=120_000)
        _shot(page, "wide-1366x900-restarted.png")
        page.click("#rerun")
        page.wait_for_function(
            "!document.body.dataset.restarted && document.body.dataset.finished",
            timeout=120_000,
        )
        page.click("#save")
        page.wait_for_function("document.body.dataset.saved", timeout=120_000)
    assert not page.errors


@pytest.mark.browser
def test_a_row_added_to_the_table_gets_a_slider_on_the_page(served, browser, added_row):
    app, url = served
    page = _open(browser, url, 1366, 900)
    meaning = page.text_content("#control-test_jitter .meaning")
    assert meaning == added_row.meaning
    before = page.evaluate("document.body.dataset.job")
    page.fill("#input-test_jitter", "0.2")
    page.press("#input-test_jitter", "Enter")
    assert int(page.input_value("#slider-test_jitter")) > 500  # log: 1e-4 .. 1
    assert "test_jitter=0.2" in page.evaluate("location.hash")
    # the server took the value (training it is the registered regularizer's part)
    page.wait_for_function(f"document.body.dataset.job != '{before}'")
    assert page.is_hidden("#error-test_jitter")
    page.locator("#slider-test_jitter").focus()
    page.keyboard.press("Home")  # the left end: exactly 0, off
    assert page.input_value("#input-test_jitter") == "0"
    assert not page.errors
