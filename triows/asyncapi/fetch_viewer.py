"""``python -m triows.asyncapi.fetch_viewer``: download the AsyncAPI viewer's files, once.

The build step of the page at ``/asyncapi``: it fetches the pinned release of
``@asyncapi/react-component`` from the npm registry, checks it against the registry's
integrity, keeps only the standalone bundle, its stylesheet and the licences, and prints the
folder they are in. Run again, it finds them there and downloads nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._viewer import ENV_VAR, PACKAGE, TARBALL_SIZE, VERSION, ViewerError, fetch, find

__all__ = ["COMMAND", "main", "parser"]

#: The command, as the page that misses the files tells it.
COMMAND = "python -m triows.asyncapi.fetch_viewer"


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    result = argparse.ArgumentParser(
        prog=COMMAND,
        description=(
            f"Download {PACKAGE} {VERSION}'s standalone bundle from the npm registry (once), "
            "check it against the registry's integrity, and print the folder it is kept in."
        ),
    )
    result.add_argument(
        "--folder",
        type=Path,
        default=None,
        help=f"where to keep the files (default: ${ENV_VAR}, else the user's cache folder)",
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status (0, or 1 when the files could not be had)."""
    args = parser().parse_args(argv)
    if find(args.folder) is None:
        print(
            f"downloading {PACKAGE} {VERSION} ({TARBALL_SIZE / 1e6:.1f} MB) from the npm registry",
            file=sys.stderr,
        )
    try:
        folder = fetch(args.folder)
    except ViewerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
