"""The run store: every run recorded in one SQLite file, its arrays in .npz beside it.

    with Store() as store:  # ./reglab-runs/runs.sqlite, or --store / $REGLAB_STORE
        run = store.find("weight_decay", config, seed, code_version)
        if run is None:
            run = store.start_run("weight_decay", config, seed, code_version=...)
            ...  # train; store.save_checkpoint(run.id, "last", state) per chunk
            store.save_arrays(run.id, "result", result.arrays)
            store.end_run(run.id, "finished")
        arrays = store.load_arrays(run.id, "result")

schema.py holds the migrations, artifacts.py the .npz files, runs.py the run key and
provenance, db.py the Store. Every failure a user can meet is a StoreError whose
message names the file and the fix.
"""

from reglab.store.artifacts import Artifact
from reglab.store.db import CHECKPOINTS, Freed, Store
from reglab.store.runs import MetricHistory, Run, config_hash, resolve_path
from reglab.store.schema import APPLICATION_ID, MIGRATIONS, STATUSES, StoreError

__all__ = [
    "APPLICATION_ID",
    "CHECKPOINTS",
    "MIGRATIONS",
    "STATUSES",
    "Artifact",
    "Freed",
    "MetricHistory",
    "Run",
    "Store",
    "StoreError",
    "config_hash",
    "resolve_path",
]
