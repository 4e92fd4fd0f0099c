"""Command line: `python -m service run` (what `make run` starts) and `python -m service token USER_ID [--admin]`."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start a private Valkey server, one worker and the web app on :8000")
    args = parser.parse_args(argv)
    if args.command == "run":
        from .devrun import main as run

        return run()
    return 2


if __name__ == "__main__":
    sys.exit(main())
