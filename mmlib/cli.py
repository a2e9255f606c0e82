"""Command line: `python -m mmlib train | evaluate | caption | imagine | fit-imagine | curves |
size-batch | data synth|check` (and `demo`, `export`)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mmlib.config import DATA_FORMATS, DEVICES, PRESETS, Config, ConfigError, parse_override
from mmlib.data.synthetic import GRAMMARS, MAX_IMAGE_SIZE
from mmlib.files import atomic_open, check_output_file, check_output_folder
from mmlib.model.multimodal import MAX_BEAM_WIDTH
from mmlib.sizing.batch_size import GPUS
from mmlib.sizing.memory import GIB, PRECISIONS

# What `imagine --out` writes, by extension: the PIL format of each.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# What `curves --out` writes: matplotlib's savefig formats that need nothing beyond matplotlib
# and Pillow (pgf needs LaTeX; raw and rgba are headerless pixel dumps).
PLOT_EXTENSIONS = (".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff")


# What `add_subparsers` returns: each command group below adds its commands to it.
Commands = argparse._SubParsersAction


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `python -m mmlib` command."""
    parser = argparse.ArgumentParser(prog="python -m mmlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add_commands in (  # in the order `--help` lists the commands
        _add_data_commands,
        _add_train_command,
        _add_model_commands,
        _add_run_upkeep_commands,
        _add_analysis_commands,
        _add_sharing_commands,
    ):
        add_commands(commands)
    return parser


def _run_arguments(*, device: bool = True) -> argparse.ArgumentParser:
    """The arguments of a command that opens a trained run, as an argparse parent: the run,
    the folder of runs and (with `device`) the device to load it on."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("run", help="a run folder, a run name or 'latest'")
    parent.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"))
    if device:
        parent.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    return parent


def _add_data_commands(commands: Commands) -> None:
    """`data synth` and `data check`."""
    data = commands.add_parser("data", help="make or check a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    synth = data_commands.add_parser("synth", help="draw the synthetic engravings dataset")
    synth.add_argument("--out", type=Path, default=Path("data/synthetic"), help="output folder")
    synth.add_argument("--n", type=int, default=5141, help="images to train and validate on")
    synth.add_argument("--test-n", type=int, default=514, help="test images, drawn apart (0: none)")
    synth.add_argument(
        "--image-size",
        type=_int_between(16, MAX_IMAGE_SIZE),
        default=128,
        help=f"side in pixels (16 to {MAX_IMAGE_SIZE})",
    )
    synth.add_argument("--seed", type=int, default=42, help="dataset seed")
    synth.add_argument(
        "--grammar",
        choices=GRAMMARS,
        default="simple",
        help="captions: one per image in the 34-token grammar, or five by different annotators",
    )
    synth.set_defaults(handler=_data_synth)

    check = data_commands.add_parser("check", help="validate a dataset and print a report")
    check.add_argument("path", type=Path, help="dataset folder, metadata JSON or caption file")
    check.add_argument("--format", choices=DATA_FORMATS, default="auto")
    check.add_argument("--images", type=Path, default=None, help="images folder (seed format)")
    check.set_defaults(handler=_data_check)


def _add_train_command(commands: Commands) -> None:
    """`train`."""
    train = commands.add_parser("train", help="train a model into checkpoint_dir/<run>/")
    train.add_argument("--preset", choices=PRESETS, default="cpu-tiny")
    train.add_argument("--config", type=Path, help="a config.json to start from (not --preset)")
    train.add_argument("--batch-size", help='an integer, or "auto" to size it to the device')
    train.add_argument("--epochs", type=int, dest="num_epochs")
    train.add_argument(
        "--lr", type=_number_in(0.0, 10.0, low_open=True), dest="learning_rate", help="(0, 10]"
    )
    train.add_argument("--metadata", type=Path, dest="metadata_path", help="seed metadata JSON")
    train.add_argument("--images", type=Path, dest="images_dir", help="seed images folder")
    train.add_argument("--data", type=Path, dest="data_dir", help="a dataset folder or file")
    train.add_argument("--format", choices=DATA_FORMATS, dest="data_format")
    train.add_argument("--run", dest="run_name", help="run folder name under checkpoint_dir")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--resume", help="continue a run: a folder, a run name or 'latest'")
    train.add_argument(
        "--no-imagine",
        action="store_const",
        const=0,
        dest="imagine_steps",
        help="do not fit imagine.pt after training (the same as --set imagine_steps=0)",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any Config field, e.g. --set warmup_steps=100 (repeatable)",
    )
    train.set_defaults(handler=_train)


def _add_model_commands(commands: Commands) -> None:
    """`evaluate`, `caption` and `imagine`: a trained run's model at work."""
    evaluate = commands.add_parser(
        "evaluate", parents=[_run_arguments()], help="write metrics.json for a run"
    )
    evaluate.add_argument("--data", type=Path, help="evaluate on this dataset, not the val split")
    evaluate.add_argument("--format", choices=DATA_FORMATS, default="auto", dest="data_format")
    evaluate.add_argument(
        "--fid-weights", type=Path, help="local FID Inception weights (pt_inception-...pth)"
    )
    evaluate.set_defaults(handler=_evaluate)

    caption = commands.add_parser(
        "caption", parents=[_run_arguments()], help="print a caption for each image"
    )
    caption.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    caption.add_argument(
        "--beam",
        type=_int_between(1, MAX_BEAM_WIDTH),
        metavar="WIDTH",
        help=f"beam search of this width (1 to {MAX_BEAM_WIDTH})",
    )
    caption.add_argument(
        "--length-penalty", type=_number_in(0.0, 5.0), default=0.6, help="beam search's, 0 to 5"
    )
    caption.set_defaults(handler=_caption)

    imagine = commands.add_parser(
        "imagine", parents=[_run_arguments()], help="draw an image from a caption"
    )
    imagine.add_argument("caption", help="the caption, in quotes")
    imagine.add_argument(
        "--out", type=Path, default=Path("imagined.png"), help="image to write (.png, .jpg)"
    )
    imagine.add_argument("--seed", type=int, default=0, help="another seed, another image")
    imagine.set_defaults(handler=_imagine)


def _add_run_upkeep_commands(commands: Commands) -> None:
    """`fit-imagine` and `trust-vocabulary`: what a trained run may need added."""
    fit = commands.add_parser(
        "fit-imagine",
        parents=[_run_arguments()],
        help="fit a run's imagine.pt (text-conditioned latent flow, latent prior)",
    )
    fit.add_argument(
        "--steps", type=int, help="flow training steps (default: in proportion to the data set)"
    )
    fit.set_defaults(handler=_fit_imagine)

    trust = commands.add_parser(
        "trust-vocabulary",
        parents=[_run_arguments(device=False)],
        help="for a run without manifest.json: print captions decoded with its tokenizer.json, "
        "then record that vocabulary as the run's own",
    )
    trust.add_argument("--images", type=int, default=4, help="validation images to caption")
    trust.set_defaults(handler=_trust_vocabulary)


def _add_analysis_commands(commands: Commands) -> None:
    """`curves` and `size-batch`."""
    curves = commands.add_parser(
        "curves",
        help="plot runs' loss curves, print a summary and a diagnosis of each, the runs compared "
        "(a worse run that differs from the best in one config field gets that field as its cause)",
    )
    curves.add_argument("runs", nargs="+", metavar="RUN", help="run folders, names or 'latest'")
    curves.add_argument(
        "--out", type=Path, default=Path("curves.png"), help="the plot (.png, .pdf, .svg, ...)"
    )
    curves.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"))
    curves.set_defaults(handler=_curves)

    size = commands.add_parser(
        "size-batch", help="estimate training memory per batch size and recommend one for a GPU"
    )
    size.add_argument("--preset", choices=PRESETS, default="seed-large")
    size.add_argument("--config", type=Path, help="a config.json to size (not --preset)")
    size.add_argument("--gpu", default="h100", help=f"{', '.join(GPUS)}, or a size in GiB")
    size.add_argument("--precision", choices=PRECISIONS, help="default: the config's on CUDA")
    size.add_argument(
        "--batch-sizes", type=_int_list, default=(8, 16, 32, 64), help="comma-separated"
    )
    size.add_argument(
        "--headroom",
        type=_number_in(0.0, 1.0, high_open=True),
        default=0.1,
        help="share of the card kept free, [0, 1)",
    )
    size.add_argument(
        "--measure", action="store_true", help="also measure each step on this machine's device"
    )
    size.set_defaults(handler=_size_batch)


def _add_sharing_commands(commands: Commands) -> None:
    """`demo` and `export`: a trained run for others to use."""
    demo = commands.add_parser(
        "demo",
        parents=[_run_arguments()],
        help="a local web app: caption an uploaded image, imagine a typed caption",
    )
    demo.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    demo.set_defaults(handler=_demo)

    export = commands.add_parser(
        "export",
        parents=[_run_arguments(device=False)],
        help="export a run as ONNX or torch.export graphs with a NumPy runtime",
    )
    export.add_argument("--format", choices=("onnx", "torch-export"), required=True)
    export.add_argument("--out", type=Path, help="output folder (default: RUN/export-FORMAT/)")
    export.set_defaults(handler=_export)


def _int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected an integer >= {low} and <= {high}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text}: must be >= {low}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text}: must be <= {high}")
        return value

    return parse


def _number_in(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number from `low` to `high` (each end excluded if open)."""
    allowed = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number in {allowed}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text}: out of range: allowed {allowed}")
        return value

    return parse


def _int_list(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers such as 8,16,32") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be >= 1")
    return sizes


_TRAIN_FIELDS = (
    "batch_size",
    "num_epochs",
    "learning_rate",
    "metadata_path",
    "images_dir",
    "data_dir",
    "data_format",
    "run_name",
    "device",
    "imagine_steps",
)


def train_config(args: argparse.Namespace) -> Config:
    """The Config a `train` command line describes: the preset, a file or the resumed run's own,
    then the options given, then --set."""
    overrides = dict(parse_override(text) for text in args.set)
    if args.resume:
        from mmlib.training.setup import run_config

        config = run_config(args.resume, overrides.get("checkpoint_dir", "checkpoints"))
    else:
        config = Config.load(args.config) if args.config else Config.preset(args.preset)
    options = {
        name: getattr(args, name) for name in _TRAIN_FIELDS if getattr(args, name) is not None
    }
    config = config.with_overrides({**options, **overrides})
    _refuse_missing_data_paths(config, {**options, **overrides})
    return config


# The data paths the command line can give: field -> (option, what it must be).
_DATA_PATHS = {"metadata_path": ("--metadata", "file"), "images_dir": ("--images", "folder")}


def _refuse_missing_data_paths(config: Config, given: Mapping[str, Any]) -> None:
    """A --metadata or --images given that does not exist is an error: only the defaults fall
    back to the synthetic set (a fresh clone trains on it), never a typo."""
    for name, (option, kind) in _DATA_PATHS.items():
        path = getattr(config, name)
        exists = path.is_file() if kind == "file" else path.is_dir()
        if name in given and not exists:
            raise ConfigError(f"{option} {path}: no such {kind}; check the path ({name})")
    if "images_dir" in given and config.data_dir is None and not config.metadata_path.is_file():
        raise ConfigError(
            f"--images {config.images_dir} given, but there is no metadata at "
            f"{config.metadata_path}; pass --metadata with the images' JSON file"
        )


def _train(args: argparse.Namespace) -> int:
    from mmlib.pipeline import train_and_evaluate
    from mmlib.training.setup import prepare_run

    # The batch size ("auto" sized to the device), the device, the processes and the resumed
    # state are resolved here, once, before training.
    train_and_evaluate(prepare_run(train_config(args), resume=args.resume))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mmlib.evaluation.metrics import evaluate_run

    metrics = evaluate_run(
        args.run, args.checkpoint_dir, args.device, args.data, args.data_format, args.fid_weights
    )
    print(metrics.table())
    return 0


def _caption(args: argparse.Namespace) -> int:
    from mmlib.inference.predictor import Predictor

    predictor = Predictor.load(args.run, args.checkpoint_dir, device=args.device)
    method: Literal["greedy", "beam"] = "greedy" if args.beam is None else "beam"
    captions = predictor.caption(args.images, method, args.beam or 1, args.length_penalty)
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption}")
    return 0


def _imagine(args: argparse.Namespace) -> int:
    from torchvision.utils import save_image

    from mmlib.inference.predictor import Predictor

    check_output_file(args.out, "--out", tuple(IMAGE_FORMATS))
    predictor = Predictor.load(args.run, args.checkpoint_dir, device=args.device)
    image = predictor.imagine(args.caption, seed=args.seed)
    with atomic_open(args.out) as handle:
        save_image(image.float() / 255, handle, format=IMAGE_FORMATS[args.out.suffix.lower()])
    print(f"wrote {args.out} ({image.shape[-1]}x{image.shape[-2]})")
    return 0


def _fit_imagine(args: argparse.Namespace) -> int:
    from mmlib.inference.imagine import fit_run_imagination

    path = fit_run_imagination(args.run, args.checkpoint_dir, args.device, args.steps)
    print(f"wrote {path}")
    return 0


def _trust_vocabulary(args: argparse.Namespace) -> int:
    from mmlib.checkpoint import MANIFEST_FILE, load_run_tokenizer, record_vocabulary, resolve_run
    from mmlib.inference.predictor import vocabulary_samples

    run_dir = resolve_run(args.run, args.checkpoint_dir)
    if (run_dir / MANIFEST_FILE).exists():
        load_run_tokenizer(run_dir)  # a manifest that disagrees is refused, never overwritten
        print(f"{run_dir / MANIFEST_FILE} already records this vocabulary; nothing written")
        return 0
    tokenizer, samples = vocabulary_samples(run_dir, args.images)
    print(f"Captions of {len(samples)} validation image(s), decoded with its tokenizer.json:")
    for reference, caption in samples:
        print(f"  reference: {reference}\n  model:     {caption}")
    path = record_vocabulary(tokenizer, run_dir)
    print(
        f"wrote {path}: if the captions above are garbled, tokenizer.json is not the one the "
        f"weights were trained with: put the run's own back, delete {MANIFEST_FILE} and run this "
        "again"
    )
    return 0


def _curves(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out", PLOT_EXTENSIONS)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmlib.course.plots import plot_curves
    from mmlib.evaluation.curves import (
        diagnose_runs,
        format_findings,
        load_histories,
        summary_table,
    )

    histories = load_histories(args.runs, args.checkpoint_dir)
    figure = plot_curves(histories)
    with atomic_open(args.out) as handle:
        figure.savefig(handle, format=args.out.suffix.lower()[1:], dpi=120)
    plt.close(figure)
    print(summary_table(histories))
    findings = diagnose_runs(histories)
    for history in histories:
        print(f"\n{history.name} ({history.path}):")
        print(format_findings(findings[history.name]))
    print(f"\nwrote {args.out}")
    return 0


def _size_batch(args: argparse.Namespace) -> int:
    from mmlib.config import get_device
    from mmlib.sizing.batch_size import (
        batch_size_table,
        format_batch_size_table,
        gpu_memory,
        recommend_batch_size,
    )
    from mmlib.sizing.gpu_calibration import config_margin, margin_note
    from mmlib.sizing.memory import estimate_memory

    config = Config.load(args.config) if args.config else Config.preset(args.preset)
    try:
        name, capacity = gpu_memory(args.gpu)
        device = get_device(config) if args.measure else None
        rows = batch_size_table(
            config, args.batch_sizes, args.gpu, args.measure, device, args.precision, args.headroom
        )
        print(format_batch_size_table(rows))
        precision = rows[0].estimate.precision
        margin = config_margin(
            config, precision, lambda batch: estimate_memory(config, batch, precision)
        )
        best = recommend_batch_size(config, capacity / GIB, args.headroom, precision, margin=margin)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    print(f"recommended batch_size for {name} with {args.headroom:.0%} headroom: {best}")
    print(margin_note(config.preset_name, precision, margin))
    return 0


def _data_synth(args: argparse.Namespace) -> int:
    from mmlib.data.synthetic import generate

    if args.n < 1 or args.test_n < 0:
        raise ConfigError(f"--n={args.n}, --test-n={args.test_n}: need n >= 1, test-n >= 0")
    check_output_folder(args.out, "--out")
    summary = generate(
        args.out,
        n=args.n,
        image_size=args.image_size,
        seed=args.seed,
        test_n=args.test_n,
        grammar=args.grammar,
    )
    print(summary)
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from mmlib.data.readers import check_dataset

    report = check_dataset(args.path, format=args.format, images_dir=args.images)
    print(report)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mmlib.serving.demo import DemoDependencyError, launch_demo

    try:
        launch_demo(args.run, args.port, args.checkpoint_dir, args.device)
    except (DemoDependencyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace) -> int:
    from mmlib.serving.export import ExportError, export_run, summary

    if args.out is not None:
        check_output_folder(args.out, "--out")
    try:
        folder = export_run(args.run, args.format, args.out, args.checkpoint_dir)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(folder))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; known errors print one clear line and exit with status 2."""
    from mmlib.checkpoint import CheckpointError
    from mmlib.data.images import ImageFileError
    from mmlib.data.readers import DatasetError
    from mmlib.data.tokenizer import TokenizerError
    from mmlib.files import OutputPathError, WriteError
    from mmlib.inference.predictor import PromptError
    from mmlib.training.setup import TrainingError

    known = (
        ConfigError,
        DatasetError,
        TokenizerError,
        CheckpointError,
        TrainingError,
        WriteError,
        OutputPathError,
    )
    bad_inputs = (ImageFileError, PromptError)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (*known, *bad_inputs, FileExistsError, FileNotFoundError) as error:
        print(f"error: {error_line(error)}", file=sys.stderr)
        return 2


def error_line(error: Exception) -> str:
    """The one line a refused command prints: the library's own message on one line, or, for an
    error the system raised about a path, the path and what is wrong, never a raw "[Errno N]"."""
    if (
        isinstance(error, OSError)  # narrows for the checker: both types below are OSErrors
        and type(error) in (FileExistsError, FileNotFoundError)
        and error.filename is not None
    ):
        reason = (error.strerror or "cannot be used").lower()
        return f"{error.filename}: {reason}; check the path"
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())
