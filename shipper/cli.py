"""The command line: ``shipper run | check | preview | volume [-c PATH]``.

Exit codes: 0 clean, 2 configuration error (every problem printed, no traceback),
1 fatal error.  ``check`` prints the region the shipper would use and where it found
it; missing AWS credentials are a warning there (they may come later), not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
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
    volume = commands.add_parser(
        "volume", help="what the files on disk would cost to ship, and what filters save"
    )
    volume.add_argument("-c", "--config", help=help_c)
    volume.add_argument("--source", metavar="CATEGORY", help="only this category")
    volume.add_argument(
        "--since", default="24h", metavar="AGE", help="files modified within AGE (24h; 7d, 90m)"
    )
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
        from shipper import categories, preview

        loaded = categories.concrete(loaded)  # preview and volume: the categories found now
        if args.command == "volume":
            return _volume(loaded, path, args.source, args.since)

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
    """Report what a run would trip over: folders, state, region, credentials.

    Only what the operator must fix is a problem (exit 2).  What may be missing only
    for now, as credentials at boot before the instance role is attached, is a
    warning: a run waits for it, and a service manager that runs ``check`` before
    starting must not give up over it.
    """
    from shipper import identity
    from shipper.checkpoints import CheckpointStore
    from shipper.cloudwatch import NO_CREDENTIALS

    problems = []
    notes = []
    warnings = []
    written, (loaded, indices) = loaded, _found_categories(loaded)
    for index, source in zip(indices, loaded.sources, strict=True):
        if not source.path.parent.is_dir():
            notes.append(
                f"sources[{index}].path: folder {source.path.parent} does not exist yet "
                "(it is watched for)"
            )
        elif source.path.exists() and not os.access(source.path, os.R_OK):
            problems.append(f"sources[{index}].path: {source.path} is not readable")
    problems.extend(_check_formats(loaded, indices))
    writable = CheckpointStore(loaded.state_dir).check_writable()
    if writable:
        problems.append(f"state_dir: {writable}")
    # The hostname is known here too (the metadata placeholders only where the shipper
    # runs: they are checked when it starts).
    problems += config.name_problems(written, {"hostname": socket.gethostname()})
    try:
        region, found_in = identity.region(loaded.cloudwatch.region)
        notes.append(f"cloudwatch.region: {region} (from {found_in})")
    except identity.RegionNotFound as exc:
        problems.append(f"cloudwatch.region: null; {exc}")
    if not _has_credentials(loaded):
        warnings.append(f"cloudwatch: {NO_CREDENTIALS}; a run waits for them, retrying")
    for note in notes:
        print(logs.mask(f"note: {note}"))
    for warning in warnings:
        print(logs.mask(f"warning: {warning}"), file=sys.stderr)
    if problems:
        for problem in problems:
            print(logs.mask(f"shipper: {problem}"), file=sys.stderr)
        return EXIT_CONFIG
    print(logs.mask(f"{path}: ok ({len(loaded.sources)} sources)"))
    return EXIT_OK


def _found_categories(loaded: config.Config) -> tuple[config.Config, list[int]]:
    """Say which categories each glob entry finds now (none yet is a warning: the
    folders may come later; a refused folder name is one too, the others go on);
    return the config with the globs replaced by what they find, and for each of its
    sources the index of the entry it comes from."""
    from shipper import categories
    from shipper.follow import source_key

    values = {"hostname": socket.gethostname()}
    sources = [s for s in loaded.sources if not config.is_glob(s.path)]
    indices = [i for i, s in enumerate(loaded.sources) if not config.is_glob(s.path)]
    taken = {source_key(s) for s in sources}  # a hand-written source wins
    for index, entry in enumerate(loaded.sources):
        if not config.is_glob(entry.path):
            continue
        found, refused = categories.find(dataclasses.replace(loaded, sources=[entry]), values)
        found = [s for s in found if source_key(s) not in taken]
        taken.update(source_key(s) for s in found)
        sources += found
        indices += [index] * len(found)
        if found:
            listed = ", ".join(f"{s.category} ({s.path})" for s in found)
            print(logs.mask(f"sources[{index}].path: {entry.path} finds {listed}"))
        else:
            print(
                logs.mask(
                    f"warning: sources[{index}].path: {entry.path} finds no category yet "
                    "(its folders are watched for)"
                ),
                file=sys.stderr,
            )
        for refusal in refused:
            print(
                logs.mask(
                    f"warning: sources[{index}].path: folder {refusal.category!r} is skipped: "
                    f"{refusal.problem}"
                ),
                file=sys.stderr,
            )
    return dataclasses.replace(loaded, sources=sources), indices


def _has_credentials(loaded: config.Config) -> bool:
    import botocore.session

    session = botocore.session.get_session()
    try:
        return session.get_credentials() is not None
    except Exception:
        return False


def _check_formats(loaded: config.Config, indices: list[int]) -> list[str]:
    """Whether each source's format matches the first lines of its files: a file with
    a line it does not match is a warning, quoting that line (masked); a source not one
    of whose lines matches is a problem.  Files not there yet, empty or unreadable (the
    folder check reports that) say nothing."""
    from shipper.discovery import RotatedNames
    from shipper.mismatch import SAMPLE_LINES, sample_file

    problems = []
    masker = masker_for(loaded.masking)
    for index, source in zip(indices, loaded.sources, strict=True):  # index: as written
        name = f"sources[{index}] ({source.category})"
        rotated = RotatedNames(source.path.name, source.rotated)
        try:
            siblings = sorted(
                entry.path
                for entry in os.scandir(source.path.parent)
                if (sibling := rotated.match(entry.name)) is not None and not sibling.compressed
            )
        except OSError:
            continue
        paths = [*([str(source.path)] if source.path.is_file() else []), *siblings]
        samples = []
        for path in paths:
            try:
                samples.append((path, sample_file(source, Path(path))))
            except OSError:
                continue
        read = [(path, sample) for path, sample in samples if sample.lines]
        for path, sample in read:
            if sample.first_unmatched is not None:
                number, text = sample.first_unmatched
                shown = masker.redact_key_text(text[:200])
                print(
                    logs.mask(
                        f"warning: {name}: {path} line {number} does not match the format: {shown}"
                    )
                )
        if read and not any(sample.matched for _, sample in read):
            problems.append(
                f"sources[{index}].format: {source.format!r} matches none of the first "
                f"{SAMPLE_LINES} lines of {', '.join(path for path, _ in read)}"
                + (f" (datefmt {source.datefmt!r})" if source.datefmt else "")
            )
        elif read and not any(sample.first_unmatched for _, sample in read):
            print(f"{name}: the format matches the first lines of {len(read)} file(s)")
    return problems


def _volume(loaded: config.Config, path: Path, category: str | None, since: str) -> int:
    from shipper import volume
    from shipper.filters import parse_duration

    seconds = parse_duration(since)
    if not seconds:
        print(
            f"shipper: --since: {since!r}; expected an age such as 24h, 7d or 90m", file=sys.stderr
        )
        return EXIT_CONFIG
    names = {s.category for s in loaded.sources}
    if category is not None and category not in names:
        print(
            logs.mask(
                f"shipper: --source: {category!r} is not a category of {path}; "
                f"expected one of {', '.join(sorted(names))}"
            ),
            file=sys.stderr,
        )
        return EXIT_CONFIG
    logs.set_level("warning")  # files opened and closed are not news here
    volume.volume(loaded, category, seconds, since, sys.stdout, sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
