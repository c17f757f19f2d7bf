"""What several verbs share: help texts, a run folder's own file names, the table printer, output guards.

Nothing here imports torch: `digitrec predict` starts without it (the training modules load it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digitrec.core.constants import UNSURE_BELOW
from digitrec.core.errors import DigitrecError
from digitrec.inference.runs import BUNDLED_DIR, CHECKPOINT, CONFIG, METRICS, ONNX, WEIGHTS, own_files, run_path

DATA_HELP = "data: MNIST IDX folder, Kaggle CSV, .npz, image or image folder (default: $DIGITREC_DATA)"
CLUSTER_HELP = ("read on Ray: local Ray in this process without ADDRESS (or $RAY_ADDRESS), else the cluster at "
                "ADDRESS; --out is then a folder for a Parquet dataset (pip install \"digitrec[cluster]\")")
UNSURE_HELP = (f"A reading whose calibrated confidence is under {UNSURE_BELOW} is marked 'unsure'; a picture with no "
               "digit-like ink (blank, a blot or smudge, a scribble) is answered 'no digit' instead of a digit.")
OVERWRITE_HELP = ("replace an existing --out file (never an input or a run's own files); with --cluster, what "
                  "digitrec wrote in an --out folder it made")

# A run folder's own files (its line model's in lines/ too): no --out of another verb replaces them.
LINE_FILES = ("line.onnx", "line.safetensors", "line-checkpoint.pt", CONFIG, METRICS, "metrics-first-run.csv")
RUN_FILES = (WEIGHTS, CONFIG, METRICS, CHECKPOINT, ONNX, "line.onnx", "line.safetensors", "curves.png",
             "confusion.png", "per_class.png", "errors.png", "samples.png", "confusion_test.png", "errors_test.png",
             "report.html")


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


def _at_most(value: int | None, flag: str, bound: int) -> None:
    if value is not None and value > bound:
        raise DigitrecError(f"{flag} {value:,} is too many", expected=f"at most {bound:,}")


def _protected(out: str, model: str | None) -> tuple[Path, ...]:
    """Files an --out may never replace: the model's own (its line models' too), and a run's own when --out
    lies in a run folder, in its lines/ or in lines/signs/."""
    model_dir = run_path(model)
    bundled = (path for path in BUNDLED_DIR.rglob("*") if path.is_file())  # the page classifier too
    lines = (model_dir / "lines" / where / name for where in ("", "signs") for name in LINE_FILES)
    return (*own_files(model_dir), *lines, *bundled, *_run_names_beside(out))


def _run_names_beside(out: str) -> list[Path]:
    """Every name a run writes, when --out lies in a run folder (it holds config.json), a run's lines/ or its
    lines/signs/: refused whether or not the run has written it yet (a run without model.onnx still gets one
    from export)."""
    folder = Path(out).parent
    names = []
    if (folder / "line.onnx").is_file() or (folder.name == "lines" and (folder.parent / CONFIG).is_file()):
        names += LINE_FILES  # a line model's folder (a run's lines/, a sign reader's lines/signs/)
    if (folder / CONFIG).is_file():
        names += [*RUN_FILES, "metrics-first-run.csv"]
    return [folder / name for name in names]


def _read_on_cluster(args, mode: str) -> int:
    """predict/read --cluster: every picture of INPUT through Ray Data into the Parquet dataset --out."""
    from digitrec.cluster import batch, connect

    connect.require_ray()
    if not args.out:
        raise DigitrecError("--cluster writes a Parquet dataset", expected="--out FOLDER")
    if getattr(args, "score", False) or args.json:
        raise DigitrecError("--cluster writes its answers to --out", expected="no --json or --score with --cluster")
    source = batch.plan_source(args.input)
    batch.check_out_folder(Path(args.out), Path(args.input) if source.kind != "glob" else None, args.overwrite)
    with connect.connected(args.cluster or None, say=lambda where: print(where, file=sys.stderr)):
        bar = batch.progress_bar(quiet=args.quiet)
        try:
            result = batch.read_archive(args.input, args.out, args.model, mode, args.overwrite, bar)
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
