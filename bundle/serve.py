"""Serve a built bundle over plain HTTP for the lab: `python -m bundle.serve` (what `make bundle-serve` runs).

Integrity does not depend on the transport: every consumer checks each file's sha256 against manifest.json
(roles/artifact). Production uses an internal artifact server (TLS) instead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
from pathlib import Path

from bundle.build import REPO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bundle.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / "dist" / "bundle")
    parser.add_argument("--bind", default="0.0.0.0", help="listen address (a lab bridge address, e.g. 10.77.13.1)")
    parser.add_argument("--port", type=int, default=8640)
    args = parser.parse_args(argv)
    if not (args.dir / "manifest.json").exists():
        print(f"bundle-serve: no bundle at {args.dir} (run `make bundle` first)", file=sys.stderr)
        return 1
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(args.dir))
    try:
        server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    except OSError as exc:
        print(f"bundle-serve: cannot listen on {args.bind}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"bundle-serve: serving {args.dir} at http://{args.bind}:{args.port}/ (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
