"""``reglab playground``: the post's moons networks, trained while the sliders move.

A local web app (Starlette, served by uvicorn) whose page is plain HTML and
JavaScript: ``controls`` is the table of settings, ``engine`` trains and streams,
``app`` holds the routes. ``serve`` starts it on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import threading
import webbrowser

from reglab.playground.app import create_app

__all__ = ["create_app", "serve"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    open_browser: bool = True,
    store: str | os.PathLike | None = None,
) -> None:
    """Serve the playground until interrupted; compile the default program first."""
    import uvicorn

    from reglab.placement import configure_xla, enable_compile_cache
    from reglab.playground import controls
    from reglab.playground.engine import WARMUP

    configure_xla()  # before JAX starts its backend
    enable_compile_cache()  # a second start takes its programs from disk
    app = create_app(store)
    app.state.engine.submit(controls.parse({}), WARMUP)
    url = f"http://{host}:{port}/"
    print(f"reglab playground: {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
