"""`digitrec export`: a run's model as ONNX."""

from __future__ import annotations

from pathlib import Path

from digitrec.cli.common import _protected
from digitrec.core.errors import DigitrecError
from digitrec.core.files import check_output
from digitrec.inference.runs import ONNX, run_path


def add_parser(verbs) -> None:
    export = verbs.add_parser("export", help="export a model (ONNX)")
    export.add_argument("--model", help="run folder (default: the bundled model)")
    export.add_argument("--format", default="onnx", help="onnx")
    export.add_argument("--out", required=True, help="file to write, e.g. model.onnx")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    export.set_defaults(func=cmd_export)


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


def _list_if_marked(path: Path) -> None:
    """A file digitrec wrote into a folder that lists what digitrec wrote there joins that list."""
    from digitrec.core.files import add_written, read_manifest

    if read_manifest(path.parent) is not None:
        add_written(path.parent, {path.name})
