"""``reglab playground``: the post's moons networks, trained while the sliders move.

A local web app (Starlette, served by uvicorn) whose page is plain HTML and
JavaScript: ``controls`` is the table of settings, ``engine`` trains and streams,
``app`` holds the routes, ``guard`` the door. ``serve`` starts it on 127.0.0.1 unless
told otherwise; on an address the network reaches it requires an access token,
printed in its URL as Jupyter does.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import webbrowser

from reglab.playground.app import create_app
from reglab.playground.guard import is_loopback

__all__ = ["create_app", "serve", "serve_url"]


def serve_url(host: str, port: int) -> tuple[str, str | None, str]:
    """Return the URL to print, the access token (None on loopback) and a warning."""
    if is_loopback(host):
        token, warning = None, ""
    else:
        token = secrets.token_urlsafe(24)
        warning = (
            f"reglab playground: WARNING: listening on {host}, which other machines"
            " on the network can reach: anyone with the URL below (its token) can"
            " train here and save runs into the store"
        )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    return url, token, warning


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
    url, token, warning = serve_url(host, port)
    app = create_app(store, host=host, token=token)
    app.state.engine.submit(controls.parse({}), WARMUP)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"reglab playground: {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
