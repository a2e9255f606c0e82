"""Command line: `python -m mmlib data synth | data check`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmlib.config import DATA_FORMATS, ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `python -m mmlib` command."""
    parser = argparse.ArgumentParser(prog="python -m mmlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make or check a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    synth = data_commands.add_parser("synth", help="draw the synthetic engravings dataset")
    synth.add_argument("--out", type=Path, default=Path("data/synthetic"), help="output folder")
    synth.add_argument("--n", type=int, default=5141, help="number of images")
    synth.add_argument("--image-size", type=int, default=128, help="side in pixels")
    synth.add_argument("--seed", type=int, default=42, help="dataset seed")
    synth.set_defaults(handler=_data_synth)

    check = data_commands.add_parser("check", help="validate a dataset and print a report")
    check.add_argument("path", type=Path, help="dataset folder, metadata JSON or caption file")
    check.add_argument("--format", choices=DATA_FORMATS, default="auto")
    check.add_argument("--images", type=Path, default=None, help="images folder (seed format)")
    check.set_defaults(handler=_data_check)
    return parser


def _data_synth(args: argparse.Namespace) -> int:
    from mmlib.synthetic import generate

    if args.n < 1 or args.image_size < 16:
        raise ConfigError(f"--n={args.n}, --image-size={args.image_size}: need n >= 1, size >= 16")
    summary = generate(args.out, n=args.n, image_size=args.image_size, seed=args.seed)
    print(summary)
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from mmlib.data import check_dataset

    report = check_dataset(args.path, format=args.format, images_dir=args.images)
    print(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; known errors print one clear line and exit with status 2."""
    from mmlib.data import DatasetError
    from mmlib.tokenizer import TokenizerError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, DatasetError, TokenizerError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
