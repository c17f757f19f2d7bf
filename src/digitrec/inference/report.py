"""report.html: one self-contained page about a run (figures embedded, opens with no network)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from digitrec.core.files import atomic_write_text
from digitrec.core.hardware import PLOTS_EXTRA, has_matplotlib
from digitrec.data import Digits, summarize
from digitrec.inference import runs
from digitrec.inference.metrics import Evaluation

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #1b1f24; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #1f6feb; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f3f6fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .big { font-size: 1.6em; font-weight: 600; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" data-file="{path.name}">' \
           f"<figcaption>{html.escape(alt)} ({path.name})</figcaption></figure>"


def _rows(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{html.escape(str(c))}</td>' for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _machine(info: dict | None) -> str:
    if not info:
        return "an unrecorded machine"
    precision = "bf16 autocast" if info.get("bf16_autocast") else "fp32"
    return (f"{info.get('cpu')}, {info.get('cores')} cores, {info.get('threads')} threads, {info.get('isa')}, "
            f"{precision}, torch {info.get('torch')}")


def write_report(run_dir: Path, evaluation: Evaluation, digits: Digits, split_name: str) -> Path:
    """Evaluate figures into the run folder, then write report.html referring to every figure there. Without
    matplotlib (the core install) none is drawn: the page embeds the training figures the run holds, and says so."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    history = runs.read_metrics(run_dir)
    drawn = has_matplotlib()
    if drawn:
        from digitrec.inference import plots  # matplotlib: the plots extra

        plots.confusion(evaluation.confusion, run_dir / "confusion_test.png", f"Confusion matrix ({split_name})")
        plots.errors(digits.x, digits.y, evaluation.probabilities, run_dir / "errors_test.png",
                     predicted=evaluation.predictions)
        if history and not (run_dir / "curves.png").exists():
            plots.curves(history, run_dir / "curves.png")

    low, high = evaluation.interval95
    summary = summarize(digits)
    data_info = config.data
    parts = [
        f"<h1>digitrec run: {html.escape(config.name)}</h1>",
        f"<p>architecture <b>{html.escape(config.arch)}</b>, "
        f"{config.parameters:,} parameters</p>" if isinstance(config.parameters, int) else "",
        f'<p class="big">{split_name} accuracy {evaluation.accuracy:.4%}</p>',
        f"<p>95% interval {low:.4%} – {high:.4%}; loss {evaluation.loss:.4f}; "
        f"{evaluation.n - int(round(evaluation.accuracy * evaluation.n))} errors in {evaluation.n:,} images "
        f"of {html.escape(digits.source)}</p>",
        "<h2>Data</h2>",
        _rows([[data_info.path or "?", data_info.kind or "?", data_info.train, data_info.val,
                str(data_info.sha256 or "")[:16]]],
              ["training data", "kind", "train images", "validation images", "sha256"]),
        _rows([[split_name, summary["rows"], f"{summary['pixel_min']}-{summary['pixel_max']}",
                " ".join(map(str, summary["label_counts"] or []))]],
              ["evaluated on", "images", "pixels", "labels 0-9"]),
        "<h2>Training</h2>",
        _rows([[m.epoch, f"{m.train_loss:.4f}", f"{m.train_accuracy:.4f}",
                "" if m.val_loss is None else f"{m.val_loss:.4f}",
                "" if m.val_accuracy is None else f"{m.val_accuracy:.4f}", f"{m.seconds:.1f}"] for m in history],
              ["epoch", "train loss", "train acc", "val loss", "val acc", "seconds"]),
        f"<p>Training time {config.train_seconds or '?'} s on "
        f"{html.escape(_machine(config.hardware))}</p>",
        f"<h2>Results on {split_name}</h2>",
        _rows([[r["digit"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
               for r in evaluation.per_class()], ["digit", "precision", "recall", "F1", "support"]),
    ]
    figures = [
        ("curves.png", "Learning curves"),
        ("confusion_test.png", f"Confusion matrix on {split_name}"),
        ("errors_test.png", f"Worst errors on {split_name}"),
        ("confusion.png", "Confusion matrix on validation"),
        ("per_class.png", "Per-class precision and recall on validation"),
        ("errors.png", "Misread validation digits"),
        ("samples.png", "Sample predictions (validation)"),
    ]
    figures += [(p.name, p.stem) for p in sorted(run_dir.glob("*.png")) if p.name not in dict(figures)]
    parts.append("<h2>Figures</h2>")
    if not drawn:
        parts.append(f"<p>No figures of this evaluation: drawing them needs matplotlib "
                     f"(<code>{html.escape(PLOTS_EXTRA)}</code>).</p>")
    stale = set() if drawn else {"confusion_test.png", "errors_test.png"}  # of an earlier evaluation, maybe other data
    parts += [_img(run_dir / name, alt) for name, alt in figures if (run_dir / name).exists() and name not in stale]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(json.dumps(config.to_dict(), indent=2))}</pre>"]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>digitrec report</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    target = run_dir / "report.html"
    atomic_write_text(target, page)
    return target
