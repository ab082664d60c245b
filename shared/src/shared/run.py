"""Starting a process: settings checked first (one-line refusal), open-file limit raised, startup objects
frozen, uvicorn."""

from __future__ import annotations

import gc
import resource
import sys
from collections.abc import Callable

from fastapi import FastAPI

from shared.internal_http import SERVER_KEEPALIVE_SECONDS
from shared.settings import SETTINGS_ERRORS, settings_error_line


def raise_open_file_limit() -> None:
    """Thousands of streams over two hops need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def spare_collector_from_startup_objects() -> None:
    """Move what the imports and the app created (some 130,000 objects) out of the collector's reach.

    They live as long as the process, yet every full collection walked them all: under a burst of
    1,000 streams such a pass stopped llm-service's event loop for 150–260 ms, and now for 70–130 ms.
    Collected first, so no startup garbage is kept for ever.
    """
    gc.collect()
    gc.freeze()


def serve(build_app: Callable[[], FastAPI], *, name: str) -> None:
    """Build the app (refusing to start on bad settings with one line on stderr) and serve it on the
    host and port its settings name."""
    try:
        app = build_app()
    except SETTINGS_ERRORS as exc:
        print(f"{name}: refusing to start: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    import uvicorn  # here: a consumer process also uses this module, and serves no HTTP

    raise_open_file_limit()
    spare_collector_from_startup_objects()
    settings = app.state.settings
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.listen_port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
    )
