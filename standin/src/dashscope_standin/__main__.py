"""`python -m dashscope_standin`: serve the stand-in on STANDIN_HOST:STANDIN_PORT."""

from __future__ import annotations

import contextlib
import resource

import uvicorn

from dashscope_standin.app import create_app
from dashscope_standin.settings import Settings


def _raise_open_file_limit() -> None:
    """Every concurrent stream holds a socket; the usual soft limit (1024) is too low for a benchmark."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        # On failure keep the soft limit: the server still works, with fewer sockets.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# Idle connections are kept as long as common front proxies keep them (nginx's default), well beyond the
# 15 s for which llm-service keeps its idle DashScope connections.
KEEP_ALIVE_S = 75


def main() -> None:
    """Run the server until interrupted."""
    settings = Settings.from_env()
    _raise_open_file_limit()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


if __name__ == "__main__":
    main()
