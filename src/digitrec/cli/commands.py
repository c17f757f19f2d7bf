"""What each `digitrec` verb does and prints: a few lines over the library API each (the parser is in cli).

Each verb imports the library modules it needs inside its function: `digitrec predict` must start
without importing torch (2.5 s), which the training and export modules load."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digitrec.core.errors import DigitrecError
from digitrec.core.files import atomic_write_text, check_output, check_output_folder
from digitrec.inference.runs import CHECKPOINT, CONFIG, METRICS, ONNX, WEIGHTS, own_files, run_path

# A run folder's own files (its line model's in lines/ too): no --out of another verb replaces them.
LINE_FILES = ("line.onnx", "line.safetensors", CONFIG, METRICS)
RUN_FILES = (WEIGHTS, CONFIG, METRICS, CHECKPOINT, ONNX, "line.onnx", "line.safetensors", "curves.png",
             "confusion.png", "per_class.png", "errors.png", "samples.png", "confusion_test.png", "errors_test.png",
             "report.html")
DATA_FIGURES = ("balance.png", "samples.png", "pixels.png")  # what `data check --plots DIR` writes in DIR
ENSEMBLE_WRITES = (WEIGHTS, CONFIG, ONNX)  # what `ensemble RUN_DIR ...` writes in --out (ONNX: a stale export)


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    def align(cell: str, width: int) -> str:
        numeric = cell.replace(",", "").replace(".", "").replace("-", "").isdigit()
        return cell.rjust(width) if numeric else cell.ljust(width)

    lines = ["  ".join(align(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


# ---------------------------------------------------------------- data


def cmd_data_check(args) -> int:
    from digitrec import data

    if args.plots and args.path and Path(args.path).is_dir():  # the figures would join the pictures checked
        data_dir, plots_dir = Path(args.path).resolve(), Path(args.plots).resolve()
        if plots_dir == data_dir or data_dir in plots_dir.parents:
            raise DigitrecError("refusing to write figures inside the data being checked", where=args.plots,
                                expected="a --plots folder outside the data")
    if args.plots:  # its own figures from an earlier check are replaced; a file of the user's under their names is not
        check_output_folder(args.plots, True, DATA_FIGURES, whole=False)
    report = data.check(args.path)
    if args.plots and report.splits:
        from digitrec.core.files import recording
        from digitrec.inference import plots

        with recording(Path(args.plots), DATA_FIGURES):
            written = plots.data_figures(report.digits, Path(args.plots))
        print(f"figures: {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.json:
        _print_json({"source": report.source, "kind": report.kind, "splits": report.splits,
                     "problems": report.problems, "clean": report.clean})
    else:
        print(f"{report.source} ({report.kind})")
        rows = [[name, s["rows"], "x".join(map(str, s["shape"])), f"{s['pixel_min']}-{s['pixel_max']}",
                 s["pixel_mean"], s["duplicates"], " ".join(map(str, s["label_counts"] or ["-"]))]
                for name, s in report.splits.items()]
        if rows:
            print(_table(rows, ["split", "rows", "shape", "pixels", "mean", "duplicates", "labels 0-9"]))
        for problem in report.problems:
            print(f"problem: {problem}")
        print("clean" if report.clean else f"{len(report.problems)} problem(s)")
    return 0 if report.clean else 2


def cmd_data_download(args) -> int:
    from digitrec import data

    folder = data.download_mnist(Path(args.dest) if args.dest else None)
    print(f"MNIST verified in {folder}")
    print(f"use it with: export {data.DATA_ENV}={folder}")
    return 0


# ---------------------------------------------------------------- models, train


def cmd_models(args) -> int:
    from digitrec.models import architectures
    from digitrec.models.recipes import RECIPES

    nets = architectures
    rows = [[name, f"{nets.count_parameters(nets.create_model(name)):,}", nets.describe(name)]
            for name in nets.list_models()]
    print(_table(rows, ["name", "parameters", "description"]))
    recipes = [[name, r.arch, f"{r.steps} steps" if r.steps else r.epochs, r.batch_size, r.lr,
                r.views] for name, r in RECIPES.items()]
    print()
    print(_table(recipes, ["recipe", "arch", "epochs", "batch", "lr", "views"]))
    print("(a budget in steps becomes whole epochs: 3000 steps are 7 epochs of MNIST at batch 128;")
    print(" views: how many times the saved model reads each digit; 5: as given and shifted a pixel each way;")
    print(" any recipe field can be changed with `digitrec train --set key=value`)")
    return 0


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


# Upper bounds of the counts given on the command line: past them a typo (a few zeros too many) would grow
# memory for minutes with no output (a sweep plans every trial first). Each is far above any real use.
MAX_TRIALS = 10_000
MAX_ENSEMBLE_TRAIN = 100
MAX_LINES = 10_000_000


def _at_most(value: int | None, flag: str, bound: int) -> None:
    if value is not None and value > bound:
        raise DigitrecError(f"{flag} {value:,} is too many", expected=f"at most {bound:,}")


def cmd_train_lines(args) -> int:
    _at_most(args.lines, "--lines", MAX_LINES)
    from digitrec import data
    from digitrec.core.files import recording
    from digitrec.reading.line import line_split
    from digitrec.training.lines import LINE_CONFIG, LineSettings, train_lines

    out = check_output_folder(args.out)
    if (out / WEIGHTS).exists():
        raise DigitrecError("is a run folder: its line model would replace the run's config.json", where=str(out),
                            expected=f"--out {out / 'lines'}")
    if (out / LINE_CONFIG).exists() and not args.overwrite:
        raise DigitrecError("folder already holds a finished line model", where=str(out),
                            expected="another --out, or --overwrite to train it again")
    check_output_folder(out, args.overwrite, LINE_FILES, whole=False)
    settings = LineSettings(**{k: v for k, v in {"lines": args.lines, "epochs": args.epochs, "seed": args.seed,
                                                  "lr": args.lr, "init": args.init}.items() if v is not None})
    if settings.init and not (Path(settings.init) / "line.safetensors").is_file():
        raise DigitrecError("no line model here", where=settings.init,
                            expected="a train-lines folder with line.safetensors")
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
    print("use it: put it in a run folder as RUN_DIR/lines/ (`--out RUN_DIR/lines`); `digitrec read` finds it there")
    return 0


def cmd_tune(args) -> int:
    from tqdm import tqdm

    from digitrec.training.hand import FEW, TuneSettings, tune_run

    settings = TuneSettings(**{k: v for k, v in {"steps": args.steps, "seed": args.seed}.items() if v is not None})
    if settings.steps < 1:
        raise DigitrecError(f"--steps {settings.steps}", expected="at least 1")

    check_output_folder(args.out)
    bar = tqdm(total=settings.steps, unit="step", file=sys.stderr, disable=True if args.quiet else None)
    try:
        result = tune_run(args.data, args.out, args.model, args.replay, settings, lambda step, total: bar.update(1))
    finally:
        bar.close()
    counts = " ".join(f"{d}:{c}" for d, c in enumerate(result.counts))
    print(f"tuned on {sum(result.counts)} examples ({counts}) in {result.seconds:.1f} s; run saved to {args.out}")
    for name, why in result.skipped:
        print(f"warning: skipped {name}: {why}", file=sys.stderr)
    if result.too_few:
        print(f"warning: fewer than {FEW} examples of {', '.join(map(str, result.too_few))}: "
              "those digits may still be misread; add more and tune again", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- evaluate, predict


def cmd_evaluate(args) -> int:
    from digitrec.inference.engine import scoring_predictor
    from digitrec.inference.metrics import evaluate, held_out

    predictor = scoring_predictor(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    if args.json:
        _print_json({"model": predictor.name, "data": digits.source, "split": split, **result.as_dict()})
        return 0
    low, high = result.interval95
    print(f"model {predictor.name} on {digits.source}" + ("" if split in digits.source else f" ({split})"))
    print(f"accuracy {result.accuracy:.4f} (95% interval {low:.4f}-{high:.4f})  loss {result.loss:.4f}  "
          f"n {result.n}  errors {result.n - int(round(result.accuracy * result.n))}")
    if result.refused:
        first, why = next(iter(result.refused.items()))
        print(f"no digit read in {len(result.refused)} pictures, each counted as an error (first: {first}: {why})")
    unsure = result.unsure()
    sure_accuracy = "-" if unsure["accuracy_when_sure"] is None else f"{unsure['accuracy_when_sure']:.4f}"
    print(f"calibration error (ECE) {result.ece:.4f}  unsure (confidence < {unsure['threshold']}) "
          f"{unsure['share_unsure']:.2%}, accuracy of the rest {sure_accuracy}")
    rows = [[r["digit"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
            for r in result.per_class()]
    print(_table(rows, ["digit", "precision", "recall", "f1", "support"]))
    print("confusion (rows: true digit, columns: predicted)")
    print(_table([[d, *row] for d, row in enumerate(result.confusion.tolist())], ["", *map(str, range(10))]))
    return 0


def cmd_predict(args) -> int:
    from digitrec import data
    from digitrec.inference.engine import load_predictor, predict_files, write_submission

    if args.cluster is not None:
        return _read_on_cluster(args, "predict")
    target = Path(args.input)
    if not target.exists():
        raise DigitrecError("no such file or folder", where=str(target))
    if args.out:
        check_output(args.out, args.overwrite, _protected(args.out, args.model), inputs=(target,))
    predictor = load_predictor(args.model, args.engine)
    kind = data.detect_kind(target)
    if kind in ("image", "image-dir"):
        results = predict_files(predictor, target)
        if args.json:
            _print_json([r.as_dict() for r in results])
        else:
            rows = [[r.file, "-" if r.digit is None else r.digit,
                     "-" if r.confidence is None else f"{r.confidence:.3f}", "unsure" if r.unsure else "",
                     r.error or ""] for r in results]
            print(_table(rows, ["file", "digit", "confidence", "note", "error"]))
        if args.out:
            atomic_write_text(Path(args.out), json.dumps([r.as_dict() for r in results], indent=2) + "\n")
        _errors_to_stderr(target, results)
        return 0 if all(r.error is None for r in results) else 2
    digits = data.load(target)
    if not args.out:
        raise DigitrecError("predicting a data file writes a submission", expected="--out submission.csv")
    labels = write_submission(predictor, digits, Path(args.out))
    print(f"{len(labels)} predictions written to {args.out}")
    return 0


def _protected(out: str, model: str | None) -> tuple[Path, ...]:
    """Files an --out may never replace: the model's own (its line model's too), and a run's own when --out
    lies in a run folder or in its lines/."""
    model_dir = run_path(model)
    return (*own_files(model_dir), *(model_dir / "lines" / name for name in LINE_FILES), *_run_names_beside(out))


def _run_names_beside(out: str) -> list[Path]:
    """Every name a run writes, when --out lies in a run folder (it holds config.json) or in a run's lines/:
    refused whether or not the run has written it yet (a run without model.onnx still gets one from export)."""
    folder = Path(out).parent
    if (folder / CONFIG).is_file():
        return [folder / name for name in (*RUN_FILES, "metrics-first-run.csv")]
    if folder.name == "lines" and (folder.parent / CONFIG).is_file():
        return [folder / name for name in LINE_FILES]
    return []


def _read_on_cluster(args, mode: str) -> int:
    """predict/read --cluster: every picture of INPUT through Ray Data into the Parquet dataset --out."""
    from digitrec import cluster

    cluster.require_ray()
    if not args.out:
        raise DigitrecError("--cluster writes a Parquet dataset", expected="--out FOLDER")
    if getattr(args, "score", False) or args.json:
        raise DigitrecError("--cluster writes its answers to --out", expected="no --json or --score with --cluster")
    source = cluster.plan_source(args.input)
    cluster.check_out_folder(Path(args.out), Path(args.input) if source.kind != "glob" else None, args.overwrite)
    with cluster.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        bar = cluster.progress_bar(quiet=args.quiet)
        try:
            result = cluster.read_archive(args.input, args.out, args.model, mode, args.overwrite, bar)
        finally:
            bar.close()
    print(f"{result.pictures:,} pictures in {result.seconds:.1f} s ({result.pictures / result.seconds:,.0f} a "
          f"second); Parquet dataset in {result.out}")
    if result.errors:
        print(f"digitrec: error: {result.errors:,} pictures could not be read: see the 'error' column in "
              f"{result.out}", file=sys.stderr)
    return 0 if result.errors == 0 else 2


def _errors_to_stderr(target: Path, results) -> None:
    """Pictures that could not be read, one line each on stderr (the table or JSON on stdout has them too):
    a script that keeps only stdout, or only stderr, still learns of them."""
    base = target.parent
    for r in results:
        if r.error:
            print(f"digitrec: error: {base / r.file}: {r.error}", file=sys.stderr)


def cmd_read(args) -> int:
    from digitrec.inference.engine import load_predictor, read_files

    if args.cluster is not None:
        return _read_on_cluster(args, "read")
    target = Path(args.input)
    if args.out:
        check_output(args.out, args.overwrite, _protected(args.out, args.model), inputs=(target,))
    if args.score:
        from digitrec.inference.metrics import load_numbers

        load_numbers(target)  # a bad numbers.csv is refused before any picture is read
    predictor = load_predictor(args.model, args.engine)
    results = read_files(predictor, target)
    if len(results) == 1 and results[0].error and not target.is_dir():
        raise DigitrecError(results[0].error, where=str(target))
    if args.score:
        return _score_readings(target, results, args.json)
    if args.json:
        _print_json([r.as_dict() for r in results])
    else:
        rows = [[r.file, r.reading.text if r.reading else "-", f"{r.reading.confidence:.3f}" if r.reading else "-",
                 r.error or ""] for r in results]
        print(_table(rows, ["file", "text", "confidence", "error"]))
    if args.out:
        from digitrec.core.csvout import csv_text  # quoted, and no file name read as a spreadsheet formula

        rows = [(r.file, r.reading.text, r.reading.confidence) if r.reading else (r.file, None, None) for r in results]
        atomic_write_text(Path(args.out), csv_text(["file", "text", "confidence"], rows))
    _errors_to_stderr(target, results)
    return 0 if all(r.error is None for r in results) else 2


def _score_readings(target: Path, results, as_json: bool) -> int:
    """Compare readings with the folder's numbers.csv (file,text,group): scripts/make_numbers.py's bench."""
    from digitrec.inference.metrics import score_folder

    # Files are named from the folder's parent; numbers.csv names them from the folder.
    report = score_folder(target, {r.file.split("/", 1)[-1]: r.reading.text if r.reading else None for r in results})
    if as_json:
        _print_json(report)
        return 0
    table = [[name, s["n"], f"{s['string_accuracy']:.2%}", f"{s['digit_accuracy']:.2%}"]
             for name, s in [("all", report["all"]), *report["groups"].items(),
                             *((f"{n} digits", s) for n, s in report["lengths"].items())]]
    print(_table(table, ["", "pictures", "strings right", "digits right"]))
    return 0


def cmd_ensemble(args) -> int:
    from digitrec.core.files import clear_written, recording
    from digitrec.inference.runs import load_run, make_ensemble

    _at_most(args.train, "--train", MAX_ENSEMBLE_TRAIN)
    out = Path(args.out)
    if args.train is None:
        if not args.runs:
            raise DigitrecError("nothing to average", expected="RUN_DIR RUN_DIR ..., or --train K --recipe NAME")
        _check_not_a_member(out, [Path(r) for r in args.runs])
        check_output_folder(out, args.overwrite, ENSEMBLE_WRITES)
        for run in args.runs:  # every member loads before anything of --out is removed
            load_run(run)
        clear_written(out)
        with recording(out, ENSEMBLE_WRITES, claim=(WEIGHTS, CONFIG)):
            config = make_ensemble([Path(r) for r in args.runs], out)
            calibrated = _calibrated(args, config)
        print(f"ensemble of {len(config.members or [])} models saved to {args.out}{calibrated}")
        return 0
    from digitrec import cluster
    from digitrec.cluster import sweeps

    if args.runs:
        raise DigitrecError("give run folders or --train K, not both", expected="one of them")
    cluster.require_ray()
    recipe = _recipe_from(args)
    plan = sweeps.plan_members(recipe, args.data, out, args.train, args.resume, args.overwrite)
    with cluster.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        members = sweeps.run_members(plan, say=lambda line: print(line, file=sys.stderr))
    with recording(out, sweeps.ENSEMBLE_WRITES, claim=(WEIGHTS, CONFIG)):
        accuracy = sweeps.build_ensemble(members, out, recipe, args.data)
    held_out = "" if accuracy is None else f", validation accuracy {accuracy:.4f} (calibrated on it)"
    print(f"ensemble of {len(members)} models saved to {args.out}{held_out}")
    return 0


def _check_not_a_member(out: Path, members: list[Path]) -> None:
    """An ensemble's --out is none of the runs it averages (nor a run they were averaged from), and neither lies in
    the other: writing it would replace a member, and a run listing itself as a member has no end."""
    from digitrec.inference.runs import read_config

    resolved = out.resolve()
    paths = [m.resolve() for m in members]
    for member in members:
        config = read_config(member)
        paths += [Path(m.path).resolve() for m in config.members or []] if config.is_ensemble else []
    for path in paths:
        if resolved == path or path in resolved.parents or resolved in path.parents:
            raise DigitrecError(f"refusing to write the ensemble over one of its members ({path})", where=str(out),
                                expected="an --out folder apart from every member run")


def _list_if_marked(path: Path) -> None:
    """A file digitrec wrote into a folder that lists what digitrec wrote there joins that list."""
    from digitrec.core.files import add_written, read_manifest

    if read_manifest(path.parent) is not None:
        add_written(path.parent, {path.name})


def _calibrated(args, config) -> str:
    """Calibrates an ensemble of existing runs on the validation digits they all held out, when they hold
    out the same ones and the data is at hand; says what was done."""
    from digitrec.cluster import sweeps

    splits = {(fraction, seed) for _, fraction, seed in config.splits()}  # every member's, nested ones too
    if len(splits) > 1 or not config.recipe.val_fraction:
        why = "the runs do not hold out the same validation digits" if len(splits) > 1 else "no digits held out"
        print(f"digitrec: not calibrated (temperature 1): {why}", file=sys.stderr)
        return ""
    try:
        accuracy = sweeps.calibrate_ensemble(Path(args.out), config.recipe, args.data)
    except DigitrecError as e:
        print(f"digitrec: not calibrated (temperature 1): {e.what}", file=sys.stderr)
        return ""
    return "" if accuracy is None else f", validation accuracy {accuracy:.4f} (calibrated on it)"


def _recipe_from(args):
    from digitrec.models.recipes import get_recipe, parse_overrides

    # Checked whole here, before Ray starts: a bad setting is one line, not a trial retried and failing.
    return get_recipe(args.recipe, None).update(**parse_overrides(args.set or [])).check()


def cmd_sweep(args) -> int:
    from digitrec import cluster
    from digitrec.cluster import sweeps

    _at_most(args.trials, "--trials", MAX_TRIALS)
    cluster.require_ray()

    recipe = _recipe_from(args)
    space = sweeps.parse_space(args.space)
    # Every check (the folder, the data, each setting) before Ray starts and before anything is removed.
    plan = sweeps.plan_sweep(recipe, args.data, space, args.trials, Path(args.out), args.overwrite)
    with cluster.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        result = sweeps.run_sweep(plan, say=lambda line: print(line, file=sys.stderr))
    keys = list(space)
    rows = [[row["trial"], *(row[k] for k in keys), row["epochs"],
             "-" if row["val_accuracy"] is None else f"{row['val_accuracy']:.4f}", row["status"]]
            for row in result.table]
    print(_table(rows, ["trial", *keys, "epochs", "val_accuracy", "status"]))
    print(f"table: {result.csv}; figure: {result.figure}")
    best = result.best
    sets = " ".join(f"--set {k}={best[k]}" for k in keys)
    extra = " ".join(f"--set {s}" for s in args.set or [])
    print(f"best: {best['trial']} (validation accuracy {best['val_accuracy']:.4f}); train it with:")
    print(f"  digitrec train --recipe {args.recipe or 'default'} {extra + ' ' if extra else ''}{sets} "
          f"--out runs/{best['trial']}" + (f" --data {args.data}" if args.data else ""))
    return 0


def cmd_export(args) -> int:
    from digitrec.inference.engine import Predictor
    from digitrec.inference.export import export_onnx

    if args.format != "onnx":
        raise DigitrecError(f"unknown export format '{args.format}'", expected="onnx")
    # The run's own model.onnx is made from its weights: re-exporting into it (--out RUN/model.onnx) is allowed,
    # only when it is a regular file (or not yet there) named directly: a symlink may lead to anyone's file.
    own = run_path(args.model) / ONNX
    is_own = not own.is_symlink() and not Path(args.out).is_symlink() and \
        Path(args.out).resolve() == own.resolve()
    protected = [p for p in _protected(args.out, args.model) if not (is_own and p.resolve() == own.resolve())]
    check_output(args.out, args.overwrite or is_own, tuple(protected))
    predictor = Predictor.load(args.model)
    out = export_onnx(predictor, Path(args.out))
    if is_own:  # part of the run now: listed where the run's folder keeps a manifest, replaced with it
        _list_if_marked(out)
    print(f"ONNX model written to {out} (input 'image' float32 [N,1,28,28] in [0,1], output 'logits' [N,10])")
    return 0


def cmd_serve(args) -> int:
    from digitrec.serving.app import serve

    serve(args.model, args.host, args.port, args.workers, args.allowed_host, args.collect, args.tune_every,
          args.allow_origin)
    return 0


def cmd_report(args) -> int:
    from digitrec.inference.engine import scoring_predictor
    from digitrec.inference.metrics import evaluate, held_out
    from digitrec.inference.report import write_report

    if not args.model:
        raise DigitrecError("say which run", expected="--model RUN_DIR")
    predictor = scoring_predictor(args.model)
    digits, split = held_out(args.data, predictor.config)
    result = evaluate(predictor.probabilities(digits.x), digits)
    print(f"report written to {write_report(Path(args.model), result, digits, split)}")
    return 0
