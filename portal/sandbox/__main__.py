"""``python -m portal.sandbox --host 127.0.0.1 --port 5050 [--db URL]``."""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from . import create_sandbox_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m portal.sandbox",
                                     description="Tax-bureau sandbox for the RPA/乐企/税控 channels")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--db", help="SQLAlchemy URL (default SANDBOX_DATABASE_URL or instance/sandbox.db)")
    parser.add_argument("--faults", help="JSON list of faults, or a path to a JSON file")
    args = parser.parse_args(argv)
    config = {}
    if args.db:
        config["SANDBOX_DATABASE_URL"] = args.db
    if args.faults:
        config["SANDBOX_FAULTS"] = args.faults
    app = create_sandbox_app(config)
    print(f"Tax-bureau sandbox on http://{args.host}:{args.port}", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
