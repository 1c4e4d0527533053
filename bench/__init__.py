"""Benchmarks: run as modules (``python -m bench``); never collected by pytest.

What the orchestrator (``bench.echo``, standard library only) and the load process
(``bench.client``, which needs ``websockets``) both need lives here.
"""

from __future__ import annotations

import contextlib

#: The lines ``bench.client --marks`` writes on stderr when its measured window starts and ends.
MARK_START = "bench.client: window start"
MARK_END = "bench.client: window end"
#: The lines ``bench.client --mode idle`` writes on stderr once its warm connections, then all of
#: them, are open; it then waits for a line on stdin before going on.
MARK_WARM = "bench.client: warm connections open"
MARK_ALL = "bench.client: all connections open"


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit on open files to ``needed``, as far as the hard one allows.

    Child processes inherit it: the orchestrator raises it for the servers it starts.
    """
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource  # not on Windows

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
