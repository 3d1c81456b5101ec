"""Entry point of the `ladder` command: argument parsing and the user-error boundary.

User errors (SpecError, UserError) end here as plain messages with exit code 2; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ladder_api.errors import SpecError, UserError, print_user_error
from ladder_api.exitcodes import USER_ERROR
from ladder_cli import cmd_local, cmd_operator, cmd_prepare, cmd_sizes, cmd_spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ladder",
        description="Scaling studies of latent diffusion models, on GKE TPU slices or this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cmd_spec, cmd_sizes, cmd_operator, cmd_local, cmd_prepare):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (SpecError, UserError) as err:
        print_user_error(err)
        return USER_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
