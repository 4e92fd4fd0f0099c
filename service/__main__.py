"""Command line: `python -m service run` (what `make run` starts), `python -m service token USER_ID [--admin]`,
`python -m service signin-link USER_ID [--admin]` (a one-time dashboard link), and `python -m service check` (this
host's worker probe)."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start a private Valkey server, one worker and the web app on :8000")
    token = commands.add_parser("token", help="print a bearer token for USER_ID, signed with SECRET_KEY")
    token.add_argument("user_id")
    token.add_argument("--admin", action="store_true", help="the token may see and control every user's jobs")
    link = commands.add_parser("signin-link", help="print a one-time link that signs USER_ID in to the dashboard")
    link.add_argument("user_id")
    link.add_argument("--admin", action="store_true")
    link.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the web app answers")
    commands.add_parser(
        "check", help="exit 0 if a worker process on this host is alive and its event loop answers (a container probe)"
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        from service.core.workers import check_local_workers
        from service.settings import get_settings

        ok, line = check_local_workers(get_settings().worker_check_dir)
        (sys.stdout if ok else sys.stderr).write(line + "\n")
        return 0 if ok else 1
    if args.command == "run":
        from service.dev.run import main as run

        return run()
    from service.auth import create_token, valid_user_id
    from service.settings import get_settings

    if not valid_user_id(args.user_id):
        parser.error("USER_ID: 1-64 characters of A-Z a-z 0-9 _ . @ + = -, not starting with a dot")
    if args.command == "signin-link":
        from service.dev.run import signin_link

        settings = get_settings()
        fragment = signin_link(settings, args.user_id, admin=args.admin)
        sys.stdout.write(f"{args.base_url.rstrip('/')}/dashboard#{fragment}\n")
        return 0
    sys.stdout.write(create_token(args.user_id, get_settings().secret_key, admin=args.admin) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
