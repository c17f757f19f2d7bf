"""Figures of the data, the training and the results: matplotlib's Agg backend, one look for all."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from digitrec.core.constants import NUM_CLASSES  # noqa: E402
from digitrec.core.files import atomic_write_bytes  # noqa: E402
from digitrec.data import Digits  # noqa: E402
from digitrec.inference.metrics import evaluate  # noqa: E402

DPI = 100
ACCENT = "#1f6feb"  # the drawing page uses the same blue
SECOND = "#e8590c"
STYLE = {
    "figure.facecolor": "white",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 11,
    "axes.titlesize": 13,
    "figure.titlesize": 15,
}


def _figure(width_px: int, height_px: int, rows: int = 1, cols: int = 1, **kw):
    with plt.rc_context(STYLE):
        return plt.subplots(rows, cols, figsize=(width_px / DPI, height_px / DPI), dpi=DPI, **kw)


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.2)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def _digit_grid(images, captions, title: str, path: Path, cols: int = 10, colors=None) -> Path:
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = _figure(100 * cols, 112 * rows + 60, rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(captions[i], fontsize=9, color=(colors[i] if colors else "black"))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------- training and results


def curves(history: list, path: Path) -> Path:
    """Loss and accuracy per epoch, train against validation."""
    epochs = [m.epoch for m in history]
    fig, (loss_ax, acc_ax) = _figure(1100, 450, 1, 2)
    loss_ax.plot(epochs, [m.train_loss for m in history], "o-", color=ACCENT, label="train")
    acc_ax.plot(epochs, [m.train_accuracy for m in history], "o-", color=ACCENT, label="train")
    held_out = bool(history) and history[0].val_loss is not None
    if held_out:
        loss_ax.plot(epochs, [m.val_loss for m in history], "s-", color=SECOND, label="validation")
        acc_ax.plot(epochs, [m.val_accuracy for m in history], "s-", color=SECOND, label="validation")
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.set_xticks(epochs[:: max(1, round(len(epochs) / 12))])  # at most about a dozen labels
    fig.suptitle("Learning curves" if held_out else "Learning curves (training only: nothing was held out)")
    fig.tight_layout()
    return _save(fig, path)


def confusion(matrix: np.ndarray, path: Path, title: str = "Confusion matrix") -> Path:
    fig, ax = _figure(960, 900)
    shown = np.log1p(matrix)
    ax.imshow(shown, cmap="Blues")
    ax.grid(False)
    threshold = shown.max() / 2
    for t in range(NUM_CLASSES):
        for p in range(NUM_CLASSES):
            if matrix[t, p]:
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=9,
                        color="white" if shown[t, p] > threshold else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit", title=title)
    fig.tight_layout()
    return _save(fig, path)


def per_class(evaluation, path: Path, title: str = "Per-class scores") -> Path:
    """Precision and recall of each digit as bars: which digits the model finds hard."""
    rows = evaluation.per_class()
    fig, ax = _figure(950, 450)
    digits = np.arange(NUM_CLASSES)
    ax.bar(digits - 0.2, [r["precision"] for r in rows], 0.4, color=ACCENT, label="precision")
    ax.bar(digits + 0.2, [r["recall"] for r in rows], 0.4, color=SECOND, label="recall")
    low = min(min(r["precision"], r["recall"]) for r in rows)
    margin = max(1 - low, 0.01)
    ax.set_ylim(max(0.0, low - margin * 0.5), 1.0 + margin * 0.4)  # headroom for the legend
    ax.set(xticks=digits, xlabel="digit", ylabel="score", title=f"{title} (accuracy {evaluation.accuracy:.2%})")
    ax.axhline(1.0, color="#888", linewidth=0.8)
    ax.set_yticks([t for t in ax.get_yticks() if t <= 1.0 + 1e-9])
    ax.legend(loc="upper right", ncols=2)
    fig.tight_layout()
    return _save(fig, path)


def errors(images, labels, probabilities, path: Path, limit: int = 40, predicted=None) -> Path:
    """Misread digits, the most confidently wrong first: true, predicted and confidence under each.
    `predicted`: the digits read where not simply the most probable (-1: no digit read)."""
    predicted = probabilities.argmax(1) if predicted is None else predicted
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong].max(1), kind="stable")][:limit]
    captions = [f"true {labels[i]}  " + (f"read {predicted[i]}\n{probabilities[i].max():.0%}" if predicted[i] >= 0
                                         else "no digit\nread") for i in wrong]
    title = f"Misread digits ({len(np.flatnonzero(predicted != labels))} of {len(labels)}), most confident first"
    return _digit_grid(images[wrong], captions, title, path, colors=["#c92a2a"] * len(wrong))


def samples(images, probabilities, path: Path, labels=None, count: int = 30) -> Path:
    """Sample predictions; wrong ones in red."""
    index = np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)
    predicted = probabilities.argmax(1)
    captions, colors = [], []
    for i in index:
        text = f"read {predicted[i]} ({probabilities[i].max():.0%})"
        if labels is not None:
            text += f"\ntrue {labels[i]}"
            colors.append("black" if labels[i] == predicted[i] else "#c92a2a")
        else:
            colors.append("black")
        captions.append(text)
    return _digit_grid(images[index], captions, "Sample predictions", path, colors=colors)


def run_figures(run_dir: Path, history: list, val_set: Digits | None, probabilities: np.ndarray | None) -> list[Path]:
    """curves.png, and with validation data confusion.png, per_class.png, errors.png and samples.png."""
    written = [curves(history, run_dir / "curves.png")]
    if val_set is not None and probabilities is not None:
        result = evaluate(probabilities, val_set)
        written.append(confusion(result.confusion, run_dir / "confusion.png", "Confusion matrix (validation)"))
        written.append(per_class(result, run_dir / "per_class.png", "Per-class scores (validation)"))
        written.append(errors(val_set.x, val_set.y, probabilities, run_dir / "errors.png"))
        written.append(samples(val_set.x, probabilities, run_dir / "samples.png", val_set.y))
    return written


# ---------------------------------------------------------------- data


def balance(splits: dict[str, Digits], path: Path) -> Path:
    """Label counts per split as bars."""
    labelled = {name: d for name, d in splits.items() if d.y is not None}
    fig, ax = _figure(900, 450)
    width = 0.8 / max(1, len(labelled))
    for k, (name, d) in enumerate(labelled.items()):
        counts = np.bincount(d.y, minlength=NUM_CLASSES)
        bars = ax.bar(np.arange(10) + (k - (len(labelled) - 1) / 2) * width, counts, width,
                      color=[ACCENT, SECOND][k % 2], label=f"{name} ({len(d):,})")
        ax.bar_label(bars, fontsize=8)
    ax.set(xticks=range(10), xlabel="digit", ylabel="images", title="Label balance")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.2)  # room for the legend above the bars
    ax.legend(loc="upper right", ncols=2)
    fig.tight_layout()
    return _save(fig, path)


def class_samples(digits: Digits, path: Path, per_class: int = 10) -> Path:
    """A row of examples for each digit (or simply the first images when there are no labels)."""
    if digits.y is None:
        n = min(100, len(digits))
        return _digit_grid(digits.x[:n], [f"#{i + 1}" for i in range(n)], "Sample images (unlabelled)", path)
    images, captions = [], []
    for d in range(NUM_CLASSES):
        members = np.flatnonzero(digits.y == d)[:per_class]
        for i in range(per_class):
            images.append(digits.x[members[i]] if i < len(members) else np.zeros((28, 28), np.uint8))
            captions.append(str(d) if i < len(members) else "")
    return _digit_grid(np.stack(images), captions, "Samples of each digit", path, cols=per_class)


def class_means(digits: Digits, path: Path) -> Path:
    """The mean image of each digit, or the pixel histogram when there are no labels."""
    if digits.y is None:
        fig, ax = _figure(900, 450)
        ax.hist(digits.x.ravel(), bins=64, color=ACCENT, log=True)
        ax.set(title="Pixel intensities", xlabel="pixel value (0 = background)", ylabel="pixels (log scale)")
        fig.tight_layout()
        return _save(fig, path)
    fig, axes = _figure(1000, 520, 2, NUM_CLASSES // 2)
    for d, ax in enumerate(axes.flat):
        members = digits.x[digits.y == d]
        ax.imshow(members.mean(0) if len(members) else np.zeros((28, 28)), cmap="gray_r", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(f"{d}  (n={len(members):,})", fontsize=10)
    fig.suptitle("Mean image of each digit")
    fig.tight_layout()
    return _save(fig, path)


def data_figures(splits: dict[str, Digits], out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    main = splits.get("train") or next(iter(splits.values()))
    written = []
    if any(d.y is not None for d in splits.values()):
        written.append(balance(splits, out_dir / "balance.png"))
    written.append(class_samples(main, out_dir / "samples.png"))
    written.append(class_means(main, out_dir / "pixels.png"))
    return written


def sweep_curves(curves: dict[str, list], path: Path) -> Path:
    """Validation accuracy by epoch for every trial of a sweep: the ones stopped early end early."""
    fig, ax = _figure(900, 520)
    for name, accuracies in curves.items():
        points = [(e, a) for e, a in enumerate(accuracies, start=1) if a is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Sweep: every trial's validation accuracy (ASHA stops the weak ones early)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
