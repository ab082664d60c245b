"""Starting a process: settings checked first (one-line refusal), open-file limit raised, uvicorn."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.internal_http import SERVER_KEEPALIVE_SECONDS
from shared.settings import settings_error_line


def raise_open_file_limit() -> None:
    """Thousands of streams over two hops need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(build_app: Callable[[], FastAPI], *, name: str) -> None:
    """Build the app (refusing to start on bad settings with one line on stderr) and serve it on the
    host and port its settings name."""
    try:
        app = build_app()
    except Exception as exc:  # bad settings are the expected case
        print(f"{name}: refusing to start: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    raise_open_file_limit()
    settings = app.state.settings
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.listen_port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
    )
