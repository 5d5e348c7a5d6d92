"""Stored runs out of the store: as TOML (re-runnable), rows, CSV, JSON, MLflow."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from reglab.lab import LabError
from reglab.store import Run, Store


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # a table setting (a study's grid), inline
        bare = lambda k: k.replace("_", "").replace("-", "").isalnum()  # noqa: E731
        return (
            "{"
            + ", ".join(
                f"{k if bare(k) else json.dumps(k)} = {_toml_value(v)}"
                for k, v in value.items()
            )
            + "}"
        )
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def to_toml(run: Run) -> str:
    """Return run's fully resolved config as TOML that `reglab run -c` reads back."""
    lines = [
        f"# run {run.id}: {run.experiment}, seed {run.seed}, {run.status}",
        f"# re-make it: reglab run {run.experiment} -c THIS_FILE.toml",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(run.config.items())]
    return "\n".join(lines) + "\n"


def artifact_state(store: Store, artifact: Any, *, hash_it: bool = True) -> str:
    """Return 'ok', 'missing' or 'damaged' (size, or with hash_it the sha256)."""
    import hashlib

    path = store.root / artifact.path
    try:
        if path.stat().st_size != artifact.bytes:
            return "damaged"
        if hash_it and hashlib.sha256(path.read_bytes()).hexdigest() != artifact.sha256:
            return "damaged"
    except OSError:
        return "missing"
    return "ok"


def damaged(store: Store, run: Run, *, hash_it: bool = False) -> list[str]:
    """Return 'name (missing|damaged)' for each of run's artifacts that is not ok."""
    found = []
    for a in store.artifacts(run.id):
        state = artifact_state(store, a, hash_it=hash_it)
        if state != "ok":
            found.append(f"{a.name} ({state})")
    return found


def run_record(store: Store, run: Run, *, histories: bool = False) -> dict[str, Any]:
    """Return a run as a JSON-ready dict: key, provenance, claims, artifacts."""
    out = {
        k: getattr(run, k)
        for k in (
            "id", "experiment", "seed", "status", "config_hash", "code_version",
            "started_utc", "ended_utc", "reglab_version", "jax_version",
            "python_version", "git_revision", "host", "device", "error",
        )
    }  # fmt: skip
    out["config"] = run.config
    out["info"] = run.info
    out["claims"] = store.claims(run.id)
    out["artifacts"] = [
        {**a._asdict(), "state": artifact_state(store, a, hash_it=histories)}
        for a in store.artifacts(run.id)
    ]
    if histories:
        out["metrics"] = {
            name: {"steps": h.steps.tolist(), "values": h.values.tolist()}
            for name, h in store.metrics(run.id).items()
        }
    return out


def json_safe(x: Any) -> Any:
    """Return x with NaN and infinities as None (JSON's null), in dicts and lists."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def export_json(store: Store, runs: list[Run]) -> str:
    """Return the runs, with claims and metric histories, as one JSON document."""
    records = [run_record(store, r, histories=True) for r in runs]
    return json.dumps(json_safe(records), indent=2)


def export_csv(store: Store, runs: list[Run]) -> str:
    """Return one CSV row per run and claim (a run with no claims: one row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["run", "experiment", "seed", "status", "config_hash", "config", "claim",
         "measured", "threshold", "comparison", "passed"]
    )  # fmt: skip
    for r in runs:
        base = [r.id, r.experiment, r.seed, r.status, r.config_hash,
                json.dumps(r.config, sort_keys=True)]  # fmt: skip
        claims = store.claims(r.id)
        if not claims:
            writer.writerow([*base, "", "", "", "", ""])
        for c in claims:
            writer.writerow(
                [*base, c["name"], repr(c["measured"]), repr(c["threshold"]),
                 c["comparison"], c["passed"]]
            )  # fmt: skip
    return buffer.getvalue()


def export_metrics_csv(store: Store, runs: list[Run]) -> str:
    """Return one CSV row per run, metric history and step (empty value: NaN)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "experiment", "seed", "metric", "step", "value"])
    for r in runs:
        for name, h in store.metrics(r.id).items():
            for step, v in zip(h.steps.tolist(), h.values.tolist(), strict=True):
                value = "" if math.isnan(v) else repr(v)
                writer.writerow([r.id, r.experiment, r.seed, name, step, value])
    return buffer.getvalue()


MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def _ms(utc: str | None) -> int | None:
    """Return an ISO-8601 UTC time as epoch milliseconds (MLflow's clock), or None."""
    from datetime import datetime

    return None if utc is None else int(datetime.fromisoformat(utc).timestamp() * 1000)


def _log_run(client: Any, experiment_id: str, store: Store, r: Run) -> None:
    """Log one stored run as an MLflow run: params, claims, histories, artifacts."""
    from mlflow.entities import Metric, Param

    tags = {"reglab.run": r.id, "reglab.status": r.status}
    run_name = f"{r.id} seed {r.seed}"
    start = _ms(r.started_utc)
    logged = client.create_run(experiment_id, start, tags, run_name).info.run_id
    params = [Param(k, str(v)[:500]) for k, v in sorted(r.config.items())]
    params.append(Param("seed", str(r.seed)))
    at = start or 0  # a metric's timestamp: when the run started
    metrics = [
        Metric(f"claim.{c['name']}", c["measured"], at, 0)
        for c in store.claims(r.id)
        if math.isfinite(c["measured"])
    ]
    for name, h in store.metrics(r.id).items():
        for step, v in zip(h.steps.tolist(), h.values.tolist(), strict=True):
            if math.isfinite(v):
                metrics.append(Metric(name, v, at, step))
    for i in range(0, len(params), 100):  # log_batch takes 100 params ...
        client.log_batch(logged, params=params[i : i + 100])
    for i in range(0, len(metrics), 1000):  # ... and 1000 metrics at a time
        client.log_batch(logged, metrics=metrics[i : i + 1000])
    for a in store.artifacts(r.id):
        client.log_artifact(logged, str(store.root / a.path))
    if r.status in MLFLOW_STATUS:
        client.set_terminated(logged, MLFLOW_STATUS[r.status], _ms(r.ended_utc))


def artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """Return where a new experiment's artifacts go: beside a sqlite: database.

    MLflow puts them in ./mlruns of the working folder otherwise, wherever the
    database is; file: stores and servers keep their own default (None).
    """
    from pathlib import Path

    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///")).resolve()  # relative: cwd's
    return (db.parent / "mlartifacts" / experiment.replace("/", "-")).as_uri()


# MLflow's database stores (sqlite:, postgresql:, ...) need packages mlflow-skinny
# leaves out; without them MLflow answers with a long model-registry message.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
DATABASE_PACKAGES = ("sqlalchemy", "alembic")


def missing_packages(tracking_uri: str) -> list[str]:
    """Return the packages MLflow needs for tracking_uri that do not import here."""
    import importlib

    scheme = tracking_uri.partition(":")[0].partition("+")[0].lower()
    needed = ["mlflow", *(DATABASE_PACKAGES if scheme in DATABASE_SCHEMES else ())]
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def export_mlflow(store: Store, runs: list[Run], tracking_uri: str) -> tuple[int, int]:
    """Log each run not yet there to MLflow; return (logged, already there)."""
    missing = missing_packages(tracking_uri)
    if "mlflow" in missing:
        raise LabError(
            "--format mlflow needs the mlflow package — pip install mlflow-skinny"
            " (sqlite: URIs also need sqlalchemy and alembic), or use --format csv|json"
        )
    if missing:
        raise LabError(
            f"--format mlflow with --tracking-uri {tracking_uri} needs"
            f" {' and '.join(missing)}, not installed here — pip install"
            f" {' '.join(missing)},"
            " or use --format csv|json"
        )
    import logging

    import mlflow
    from mlflow.exceptions import MlflowException

    for name in ("mlflow", "alembic"):  # their INFO lines are not the command's
        logging.getLogger(name).setLevel(logging.WARNING)
    ids: dict[str, str] = {}
    logged = there = 0
    try:
        client = mlflow.MlflowClient(tracking_uri)  # MLflow 3 refuses file: here
        for r in runs:
            name = f"reglab/{r.experiment}"
            if name not in ids:
                found = client.get_experiment_by_name(name)
                ids[name] = found.experiment_id if found else client.create_experiment(
                    name, artifact_location=artifact_root(tracking_uri, name)
                )  # fmt: skip
            same = f"tags.`reglab.run` = '{r.id}'"  # exported before: not twice
            if client.search_runs([ids[name]], same, max_results=1):
                there += 1
                continue
            _log_run(client, ids[name], store, r)
            logged += 1
    except (MlflowException, ImportError) as e:
        raise LabError(
            f"mlflow cannot log to --tracking-uri {tracking_uri} ({e}); after"
            f" {logged} runs — the same command logs only the rest"
        ) from None
    return logged, there
