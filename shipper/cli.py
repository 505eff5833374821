"""The command line: ``shipper run | check | preview [-c PATH]``.

Exit codes: 0 clean, 2 configuration error (every problem printed, no traceback),
1 fatal error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shipper import __version__, config, logs
from shipper.mask import masker_for

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipper", description="Ship Python applications' log files to CloudWatch Logs."
    )
    parser.add_argument("--version", action="version", version=f"shipper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    help_c = "config file (default: $SHIPPER_CONFIG, then ./shipper.yaml)"
    run = commands.add_parser("run", help="ship until SIGTERM/SIGINT")
    run.add_argument("-c", "--config", help=help_c)
    check = commands.add_parser("check", help="validate the config; exit 0 when valid, 2 otherwise")
    check.add_argument("-c", "--config", help=help_c)
    preview = commands.add_parser("preview", help="print the next events as they would be shipped")
    preview.add_argument("-c", "--config", help=help_c)
    preview.add_argument("--source", metavar="CATEGORY", help="only this category")
    preview.add_argument("-n", type=int, default=20, metavar="N", help="events to print (20)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = config.resolve_path(args.config)
    # Our own logs go to stdout when running; elsewhere stdout is the command's output.
    logs.configure("info", stream=sys.stdout if args.command == "run" else sys.stderr)
    try:
        loaded = config.load(path)
    except config.ConfigError as exc:
        print(logs.mask(f"shipper: {exc}"), file=sys.stderr)
        return EXIT_CONFIG
    logs.set_masker(masker_for(loaded.masking))
    try:
        if args.command == "run":
            logs.configure(loaded.log_level, stream=sys.stdout)
            from shipper import app

            asyncio.run(app.run(loaded, path))
            return EXIT_OK
        if args.command == "check":
            return _check(loaded, path)
        from shipper import preview

        if args.n < 1:
            print("shipper: -n: expected a number of events of at least 1", file=sys.stderr)
            return EXIT_CONFIG
        names = {s.category for s in loaded.sources}
        if args.source is not None and args.source not in names:
            print(
                logs.mask(
                    f"shipper: --source: {args.source!r} is not a category of {path}; "
                    f"expected one of {', '.join(sorted(names))}"
                ),
                file=sys.stderr,
            )
            return EXIT_CONFIG
        asyncio.run(preview.preview(loaded, args.source, args.n, sys.stdout))
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        logs.get().error("shipper.fatal", error=str(exc), kind=type(exc).__name__)
        return EXIT_FATAL


def _check(loaded: config.Config, path: Path) -> int:
    """Report what a run would trip over: folders, state, credentials."""
    from shipper.checkpoints import CheckpointStore

    problems = []
    notes = []
    for index, source in enumerate(loaded.sources):
        if not source.path.parent.is_dir():
            notes.append(
                f"sources[{index}].path: folder {source.path.parent} does not exist yet "
                "(it is watched for)"
            )
        elif source.path.exists() and not os.access(source.path, os.R_OK):
            problems.append(f"sources[{index}].path: {source.path} is not readable")
    writable = CheckpointStore(loaded.state_dir).check_writable()
    if writable:
        problems.append(f"state_dir: {writable}")
    if not _has_credentials(loaded):
        problems.append(
            "cloudwatch: no AWS credentials found (environment, shared files, "
            "container or instance role)"
        )
    for note in notes:
        print(logs.mask(f"note: {note}"))
    if problems:
        for problem in problems:
            print(logs.mask(f"shipper: {problem}"), file=sys.stderr)
        return EXIT_CONFIG
    print(logs.mask(f"{path}: ok ({len(loaded.sources)} sources)"))
    return EXIT_OK


def _has_credentials(loaded: config.Config) -> bool:
    import botocore.session

    session = botocore.session.get_session()
    try:
        return session.get_credentials() is not None
    except Exception:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
