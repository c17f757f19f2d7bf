"""`digitrec train` (a digit model into a run folder) and `digitrec train-lines` (the line model `read` uses)."""

from __future__ import annotations

import sys
from pathlib import Path

from digitrec.cli.common import DATA_HELP, LINE_FILES, RUN_FILES, _at_most
from digitrec.core.errors import DigitrecError
from digitrec.core.files import check_output_folder
from digitrec.inference.runs import CONFIG, WEIGHTS

# Past it a typo (a few zeros too many) would grow memory for minutes with no output; far above any real use.
MAX_LINES = 10_000_000


def add_parser(verbs) -> None:
    _add_train(verbs)
    _add_train_lines(verbs)


def _add_train(verbs) -> None:
    from digitrec.models.recipes import Recipe, list_recipes

    train = verbs.add_parser("train", help="train a model into a run folder")
    train.add_argument("--recipe", choices=list_recipes(), help="a named recipe (see `digitrec models`)")
    train.add_argument("--arch", help="architecture name (see `digitrec models`); default cnn")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="change any recipe field, typed (repeatable): " + ", ".join(Recipe.field_types()))
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--val-fraction", type=float,
                       help="held out for validation, stratified (default 0.1; 0 in --recipe best: all the data)")
    train.add_argument("--tta-shift-px", type=int, metavar="PX",
                       help="the saved model also reads each digit shifted PX pixels each way (5 views; "
                            "--recipe best: 1); 0 reads once")
    train.add_argument("--teacher", metavar="RUN_DIR",
                       help="distil: also learn from this run's probabilities (e.g. an ensemble)")
    train.add_argument("--init", metavar="RUN_DIR",
                       help="start from this run's weights instead of random ones (same --arch, same held-out "
                            "digits)")
    train.add_argument("--data", help=DATA_HELP)
    train.add_argument("--out", help="run folder to create")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last finished epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)


def _add_train_lines(verbs) -> None:
    lines = verbs.add_parser(
        "train-lines", help="train the line model that `read` uses for touching and overlapping digits",
        description="Train a line model (CNN + bidirectional GRU, CTC) on whole numbers composed from MNIST "
                    "training digits: spaced, touching, overlapping, with marks between digits, on white or "
                    "photographed paper. Validation lines come from training digits set aside; the test split is "
                    "never read. Give --out RUN_DIR/lines to have `digitrec read --model RUN_DIR` use it; with "
                    "--signs, --out RUN_DIR/lines/signs puts a sign reader beside it.")
    lines.add_argument("--data", help="MNIST folder, .npz or labelled data (its training split)")
    lines.add_argument("--out", required=True, help="folder for the line model, e.g. runs/cnn/lines")
    lines.add_argument("--lines", type=int, help="training lines to compose (default 100,000)")
    lines.add_argument("--epochs", type=int, help="default 8")
    lines.add_argument("--lr", type=float, help="default 0.002")
    lines.add_argument("--seed", type=int,
                       help="which training lines are composed (default 0); the validation digits and lines "
                            "never change, so runs compare")
    lines.add_argument("--init", metavar="DIR", help="start from this line model (more epochs, e.g. on new lines)")
    lines.add_argument("--overwrite", action="store_true", help="train again into a folder with a finished model")
    lines.add_argument("--signs", action="store_true", default=None,
                       help="also the signs inside numbers (. , - / :): values with signs among the lines, 16 classes")
    lines.add_argument("--one-pen", type=float, metavar="SHARE",
                       help="this share of the training lines redrawn with one pen, digits and signs alike "
                            "(default 0)")
    lines.set_defaults(func=cmd_train_lines)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from digitrec.models.recipes import get_recipe, parse_overrides
    from digitrec.training.loop import train_run

    if not args.out and not args.resume:
        raise DigitrecError("say where the run goes", expected="--out RUN_DIR (or --resume RUN_DIR)")

    check_output_folder(args.resume or args.out)
    if not args.resume and not (Path(args.out) / CONFIG).exists():
        # A new run in an existing folder: none of the names a run writes may already be a file of someone else's.
        check_output_folder(args.out, True, RUN_FILES, whole=False)
    recipe = get_recipe(args.recipe, args.arch).update(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
        teacher=args.teacher, init=args.init, tta_shift_px=args.tta_shift_px,
    ).update(**parse_overrides(args.set or []))
    run_dir = Path(args.resume or args.out)
    bar = None

    def on_batch(step: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            # disable=None: a bar on a terminal, nothing in a log file (the epoch line below stays)
            bar = tqdm(total=total, unit="batch", leave=True, file=sys.stderr, disable=True if args.quiet else None)
        bar.update(1)

    def on_epoch(m) -> None:
        nonlocal bar
        val = f" val_loss {m.val_loss:.4f} val_acc {m.val_accuracy:.4f}" if m.val_accuracy is not None else ""
        line = f"epoch {m.epoch}: loss {m.train_loss:.4f} acc {m.train_accuracy:.4f}{val}"
        line += f" {m.seconds:.1f}s"
        if bar is not None:
            bar.close()
            bar = None
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    _, config = train_run(recipe, args.data, run_dir, resume=bool(args.resume), on_batch=on_batch, on_epoch=on_epoch)
    if config.val_accuracy is not None:
        print(f"validation accuracy {config.val_accuracy:.4f}, {config.train_seconds:.1f} s training")
    else:
        print(f"trained on all {config.data.train:,} digits (nothing held out), "
              f"{config.train_seconds:.1f} s training; judge it with `digitrec evaluate --model {run_dir}`")
    print(f"run saved to {run_dir}")
    return 0


def cmd_train_lines(args) -> int:
    _at_most(args.lines, "--lines", MAX_LINES)
    from digitrec import data
    from digitrec.core.files import recording
    from digitrec.reading.line import LINE_ONNX, line_split
    from digitrec.training.lines import LINE_CONFIG, LINE_WEIGHTS, LineSettings, train_lines

    out = check_output_folder(args.out)
    if (out / WEIGHTS).exists():
        raise DigitrecError("is a run folder: its line model would replace the run's config.json", where=str(out),
                            expected=f"--out {out / 'lines'}")
    if (out / LINE_CONFIG).exists() and not args.overwrite:
        raise DigitrecError("folder already holds a finished line model", where=str(out),
                            expected="another --out, or --overwrite to train it again")
    check_output_folder(out, args.overwrite, LINE_FILES, whole=False)
    settings = LineSettings(**{k: v for k, v in {"lines": args.lines, "epochs": args.epochs, "seed": args.seed,
                                                  "lr": args.lr, "init": args.init, "signs": args.signs,
                                                  "one_pen": args.one_pen}.items()
                                 if v is not None})
    if settings.init and not any((Path(settings.init) / name).is_file() for name in (LINE_WEIGHTS, LINE_ONNX)):
        raise DigitrecError("no line model here", where=settings.init,
                            expected=f"a train-lines folder with {LINE_WEIGHTS}, or {LINE_ONNX} (the bundled one)")
    if settings.lines < 100 or settings.epochs < 1 or not settings.lr > 0:
        raise DigitrecError(f"--lines {settings.lines}, --epochs {settings.epochs}, --lr {settings.lr}",
                            expected="at least 100 lines, 1 epoch and a positive learning rate")
    digits = data.load(args.data, "train")  # the test split is never read here
    if digits.y is None:
        raise DigitrecError("data has no labels", where=digits.source, expected="labelled training digits")
    train_idx, val_idx = line_split(len(digits))  # always the same held-out digits, whatever --seed
    with recording(out, LINE_FILES, claim=LINE_FILES):
        config = train_lines(digits.subset(train_idx), digits.subset(val_idx), out, settings,
                             on_progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"validation lines read right: {config['val_string_accuracy']:.2%}; line model saved to {out}")
    if settings.signs:
        print("use it: as a sign reader beside a run's line model, RUN_DIR/lines/signs/ (`--out RUN_DIR/lines/signs`);"
              " `digitrec read` keeps its reading where it reads a sign surely")
    else:
        print("use it: put it in a run folder as RUN_DIR/lines/ (`--out RUN_DIR/lines`); `digitrec read` finds it"
              " there")
    return 0
