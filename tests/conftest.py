"""Shared fixtures: fresh PRNG keys. Two CPU devices, whatever the machine's cores."""

import itertools
import os
import shutil
import tempfile

os.environ.setdefault("REGLAB_CPU_DEVICES", "2")  # the multi-device paths are tested
# a test that forgets --store must not write ./reglab-runs into the checkout
os.environ.setdefault("REGLAB_STORE", tempfile.mkdtemp(prefix="reglab-test-store-"))
if os.environ.get("PYTEST_XDIST_WORKER") and "reglab-test-store-" in os.environ.get(
    "REGLAB_STORE", ""
):  # a pytest-xdist worker inherits the controller's: each gets its own
    os.environ["REGLAB_STORE"] = tempfile.mkdtemp(prefix="reglab-test-store-")
import jax  # noqa: E402
import pytest  # noqa: E402

from reglab.placement import claim_cpu_devices, configure_xla  # noqa: E402

configure_xla()  # the XLA level the reglab command and its workers compile with
claim_cpu_devices()  # before JAX starts, as the reglab command does


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the group marks
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``-n``, in the pytest options), send every test that reads
    the session's quick report to one worker, so it is made once, not per worker."""
    for item in items:
        if "quick_report" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("quick_report"))


@pytest.fixture(autouse=True)
def plugins_stay_in_their_test():
    """Unregister what a test registered and restore $REGLAB_PLUGINS after it: a
    plug-in loaded in this process must not reach later tests' subprocesses (which
    would fail importing a module only that test had on its path)."""
    from reglab import regularizers

    env = os.environ.get(regularizers.PLUGINS_ENV)
    before = {r.name for r in regularizers.registered()}
    yield
    for reg in regularizers.registered():
        if reg.name not in before:
            regularizers.unregister(reg.name)
    if env is None:
        os.environ.pop(regularizers.PLUGINS_ENV, None)
    else:
        os.environ[regularizers.PLUGINS_ENV] = env


@pytest.fixture
def getkey():
    """Return a function that hands out a fresh PRNG key on each call."""
    counter = itertools.count()
    return lambda: jax.random.fold_in(jax.random.PRNGKey(1234), next(counter))


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory):
    """Run `reglab reproduce --quick --all --seeds 2` once for the whole session."""
    from reglab import cli

    out = tmp_path_factory.mktemp("report")
    args = ["reproduce", "--quick", "--all", "--seeds", "2", "--no-progress"]
    assert cli.main(args + ["--out", str(out), "--store", str(out / "store")]) == 0
    return out


@pytest.fixture
def browser():
    """Debian's headless Chromium driven by Playwright (skipped where it is missing)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=args)
        yield launched
        launched.close()
