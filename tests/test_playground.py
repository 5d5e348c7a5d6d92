"""The playground: its endpoints through Starlette's test client, its page in Chromium.

Every job here has one small page shape (100 epochs, 2-16-16-2, 64 points), so the
whole file compiles one program; the settings that vary are traced per member.
"""

import base64
import json
import re
import socket
import threading
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from reglab import cli
from reglab.experiments import playground
from reglab.playground import controls, create_app
from reglab.playground.engine import GRID, Engine
from reglab.store import Store

SMALL = {"epochs": "100", "hidden": "16,16", "n_train": "64"}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return tmp_path_factory.mktemp("store") / "runs.sqlite"


@pytest.fixture(scope="module")
def client(store_path):
    with TestClient(create_app(store_path)) as c:
        yield c


def start(client, params, who="page-1"):
    return client.post("/api/jobs", json={"client": who, "params": params})


def events(client, job_id):
    """Return the job's server-sent events as (kind, payload) until it ends."""
    out, kind = [], None
    with client.stream("GET", f"/api/jobs/{job_id}/events") as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[len("data: ") :])))
    return out


def test_page_and_controls_table_are_served(client):
    assert "reglab playground" in client.get("/").text
    assert "EventSource" in client.get("/static/playground.js").text
    table = client.get("/api/controls").json()
    names = [c["name"] for c in table["controls"]]
    assert names == [c.name for c in controls.CONTROLS]
    assert table["max_members"] == controls.MAX_MEMBERS
    defaults = {c["name"]: c["default"] for c in table["controls"]}
    # the post's weight-decay row
    assert defaults["l2_strength"] == 0.0025 and defaults["hidden"] == "64,64"
    assert defaults["epochs"] == 10_000 and defaults["learning_rate"] == 0.15


def test_valid_job_streams_chunks_and_finishes(client):
    reply = start(client, {**SMALL, "pins": "l2_strength:0.01"})
    assert reply.status_code == 202 and reply.json()["members"] == 2
    job = reply.json()["job"]
    got = events(client, job)
    kinds = [k for k, _ in got]
    assert kinds[0] == "data" and kinds[-1] == "finished"
    frames = [p for k, p in got if k == "frame"]
    assert len(frames) >= 2  # the first chunk and the last, at least
    assert all(p["job"] == job for _, p in got)
    epochs = [f["epoch"] for f in frames]
    assert epochs == sorted(epochs) and epochs[-1] == 100
    prob = base64.b64decode(frames[-1]["prob"])
    assert len(prob) == 2 * GRID * GRID  # members x grid, a byte per point
    acc = np.array(frames[-1]["test_accuracy"])  # (seeds, members)
    assert acc.shape == (1, 2) and (acc > 0.5).all()
    assert frames[-1]["record_epochs"][-1] == 100


@pytest.mark.parametrize(
    ("params", "status", "control", "message"),
    [
        # the library's own messages (MLPSpec, Ensemble, MoonsPreset)
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
        # malformed links
        ({"bogus": "1"}, 400, "bogus", r"unknown setting\(s\) \['bogus'\]"),
        ({"pins": "l2_strength=3"}, 400, "pin 1", r"name:value"),
        ({"pins": ";".join(["l2_strength:0"] * 8)}, 400, "pins", r"at most 7 pins"),
    ],
)
def test_bad_input_is_refused_with_its_message(
    client, params, status, control, message
):
    reply = start(client, {**SMALL, **params})
    assert reply.status_code == status
    errors = reply.json()["errors"]
    assert errors[0]["control"] == control
    assert re.search(message, errors[0]["message"]), errors[0]["message"]


def test_malformed_body_is_refused(client):
    reply = client.post("/api/jobs", content=b"not json")
    assert reply.status_code == 400 and "JSON" in reply.json()["errors"][0]["message"]
    reply = client.post("/api/jobs", json={"params": ["a"]})
    assert reply.status_code == 400


def test_unknown_job_is_404(client):
    assert client.get("/api/jobs/j999999/events").status_code == 404
    assert client.post("/api/jobs/j999999/save").status_code == 404


def test_newer_job_of_a_page_makes_its_older_job_stale_not_another_pages():
    engine = Engine(start=False)  # queue first, so the order is certain
    with TestClient(create_app(engine=engine)) as c:
        older = start(c, SMALL, "page-a").json()["job"]
        other_tab = start(c, SMALL, "page-b").json()["job"]
        newer = start(c, {**SMALL, "l2_strength": "0.01"}, "page-a").json()["job"]
        engine.start()
        stale = c.get(f"/api/jobs/{older}/events")
        assert stale.status_code == 410 and f"replaced by job {newer}" in stale.text
        for job in (other_tab, newer):
            got = events(c, job)
            assert got[-1][0] == "finished" and {p["job"] for _, p in got} == {job}


def _main(capsys, *argv):
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def test_saved_job_is_remade_by_reglab_run_from_the_store(
    client, store_path, tmp_path, capsys
):
    params = {**SMALL, "pins": "l2_strength:0"}
    job = start(client, params).json()["job"]
    refused = client.post(f"/api/jobs/{job}/save")  # likely still running
    assert refused.status_code in (200, 409)
    events(client, job)
    reply = client.post(f"/api/jobs/{job}/save")
    assert reply.status_code == 200 and reply.json()["experiment"] == "playground"
    run_id = reply.json()["run"]
    assert client.post(f"/api/jobs/{job}/save").json()["run"] == run_id  # once
    with Store(store_path) as store:
        run = store.get(run_id)
        assert run.experiment == "playground" and run.status == "finished"
        assert run.config["epochs"] == 100 and run.config["l2_strengths"] == [
            0.0025,
            0.0,
        ]
        saved = store.load_arrays(run_id, "result")
    assert saved["prob"].shape == (1, 2, GRID, GRID)  # (seeds, members, R, R)
    assert saved["params_W1"].shape == (1, 2, 2, 16)
    where = ["--store", str(store_path), "--out", str(tmp_path / "out")]
    toml = _main(capsys, "show", run_id, "--toml", "--store", str(store_path))
    (tmp_path / "page.toml").write_text(toml)
    remade = ["run", "playground", "-c", str(tmp_path / "page.toml"), "--json"]
    remade = json.loads(_main(capsys, *remade, "--no-progress", "--jobs", "1", *where))
    assert not remade[0]["trained"] and remade[0]["runs"] == {"0": run_id}
    names = {c["name"] for c in remade[0]["claims"]}
    assert names == {"member0_ignores_flips", "member0_beats_member1",
                     "member1_fits_flips"}  # fmt: skip
    listed = json.loads(_main(capsys, "runs", "--json", *where[:2]))
    assert run_id in {r["id"] for r in listed}
    # and had it not been stored, reglab run would have trained the same numbers
    fresh = playground.run(controls.parse(params).config())
    assert set(fresh.arrays) == set(saved)
    for key, value in fresh.arrays.items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(store_path):
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        create_app(store_path), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.mark.browser
def test_moving_a_slider_redraws_the_boundary_in_chromium(server, browser):
    hash_ = "#" + "&".join(f"{k}={v}" for k, v in SMALL.items())
    canvas = "document.querySelector('#panels canvas').toDataURL()"
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + hash_)
    page.wait_for_function("document.body.dataset.finished", timeout=60_000)
    first_job = page.evaluate("document.body.dataset.finished")
    before = page.evaluate(canvas)
    caption = "document.querySelector('#panels .desc').textContent"
    assert page.evaluate(caption) == "follows the sliders: L2 0.0025"
    slider = page.locator("#slider-l2_strength")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("PageUp")  # a tenth of the range each: 0.015 more
    page.wait_for_function(
        f"document.body.dataset.finished && document.body.dataset.finished !="
        f" '{first_job}'",
        timeout=60_000,
    )
    after = page.evaluate(canvas)
    value = float(page.input_value("#input-l2_strength"))
    assert "l2_strength=" in page.evaluate("location.hash")
    assert not errors
    assert value > 0.0025
    assert after != before  # a new boundary arrived, and it differs
    assert page.evaluate(caption) == f"follows the sliders: L2 {value:g}"
