"""Train the page reader's printed-or-handwritten classifier (digitrec/bundled/printed.npz).

Pages from `digitrec.data.pages` with MNIST *training* digits (less the part `reading.line.line_split` sets
aside, which the page bench's validation pages are made from; never test digits, never handwriting fonts), a
quarter of them with pen-drawn digits (`data.synthetic.drawn_digits`), and printed fonts (DejaVu, Liberation)
for the labels. Each page is analysed at its own size (`reading.page._analyse`); every
piece of ink is labelled handwriting when its word lies in a field's box, else printed (labels, headings, rule
stubs, dirt). Pages of printed numbers only (`printed_numbers`: amounts, dates, codes and numbers with their labels,
in the same printed fonts, regular and bold, 16-72 px at 300 dpi) add printed digits, every piece printed
(--number-pages, none by default).
A one-hidden-layer network on `reading.page._features`, saved as numpy arrays.

    python scripts/train_printed.py --data $DIGITREC_DATA --pages 480 --out src/digitrec/bundled/printed.npz
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import data
from digitrec.data import pages, synthetic
from digitrec.reading import page as reader
from digitrec.reading.line import line_split

SEED = 700_000  # training pages' seeds start here (the page bench's validation and test seeds lie elsewhere)
NUMBER_SEED = 800_000  # and the printed-number pages' seeds here
LABELS = ("Invoice no.", "Total", "Date", "Amount", "Qty", "Price", "Order", "Account", "Tel.", "Page", "Ref.",
          "Due", "Balance", "Subtotal", "VAT", "Item", "Code", "No.", "Sum", "Paid")


def _number(rng: np.random.Generator) -> str:
    """A printed number as forms print them: an amount, a date, a time, a code or a plain number."""
    n = int(rng.integers(0, 10**6))
    y, m, d = int(rng.integers(1950, 2040)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    kinds = [str(n), f"{n:,}", f"{n / 100:,.2f}", f"{n / 100:.2f}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}",
             f"{y}-{m:02d}-{d:02d}", f"{y}-{n % 1000:03d}", f"{n % 24:02d}:{n % 60:02d}", f"-{n % 1000}",
             f"{n % 100}%", f"#{n % 10000}", str(int(rng.integers(0, 10)))]
    return kinds[int(rng.integers(len(kinds)))]


def printed_numbers(seed: int) -> bytes:
    """A page of printed lines only (labels and numbers, or numbers alone: a column of amounts, a row of
    codes), one font and size a page, some lines bold; scanned or photographed as the page bench's pages."""
    rng = np.random.default_rng(seed)
    look, dpi = str(rng.choice(pages.LOOKS)), int(rng.choice(pages.DPIS))
    width, height = pages.page_size(dpi)
    sheet = pages._Sheet(width, height, dpi, None, rng, 1.5, True, pages._printed_fonts())
    size = rng.uniform(16, 72) * dpi / 300
    y, margin = 1.5 * size, rng.uniform(0.05, 0.15) * width
    while y < height - 2 * size and len(sheet.words) < 60:
        x, bold = margin, rng.random() < 0.25
        for _ in range(int(rng.integers(1, 5))):
            text = _number(rng) if rng.random() < 0.7 else f"{rng.choice(LABELS)} {_number(rng)}"
            box = sheet.word(text, x, y, size, bold)
            x = box[2] + rng.uniform(1.5, 6) * size
            if x > width - margin - 6 * size:
                break
        y += size * rng.uniform(1.5, 3.0)
    pixels, _, _, _ = pages._finish(sheet, look, False)
    payload, _ = pages.Page(pixels, [], "list", look, dpi).encode(rng)
    return payload


def number_examples(count: int) -> tuple[np.ndarray, np.ndarray]:
    features = []
    for n in range(count):
        layout = reader._analyse(Image.open(io.BytesIO(printed_numbers(NUMBER_SEED + n))))
        if layout is not None:
            features += [reader._features(layout, word) for word in reader._groups(layout.pieces, reader.WORD_GAP)]
        print(f"number page {n + 1}/{count}", flush=True)
    x = np.concatenate(features)
    return x, np.ones(len(x), np.float32)


def examples(count: int, digits) -> tuple[np.ndarray, np.ndarray]:
    drawn, drawn_labels = synthetic.drawn_digits(2000, seed=SEED)
    hands = [pages.DigitHand(digits.x, digits.y),
             pages.DigitHand([255 - np.asarray(im.convert("L")) for im in drawn], drawn_labels)]
    features, labels = [], []
    for n in range(count):
        page = pages.render_page(pages.LAYOUTS[n % 3], hands[(n // 3) % 4 == 3], SEED + n)
        payload, _ = page.encode(np.random.default_rng(SEED + n))
        layout = reader._analyse(Image.open(io.BytesIO(payload)))
        if layout is None:
            continue
        f = layout.factor
        boxes = np.array([fl.box for fl in page.fields], float).reshape(-1, 4) / f
        for word in reader._groups(layout.pieces, reader.WORD_GAP):
            x0, y0, x1, y1 = reader._box(word)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            inside = (boxes[:, 0] - 2 <= cx) & (cx <= boxes[:, 2] + 2) & \
                (boxes[:, 1] - 2 <= cy) & (cy <= boxes[:, 3] + 2)
            features.append(reader._features(layout, word))
            labels.append(np.full(len(word), 0.0 if inside.any() else 1.0, np.float32))
        print(f"page {n + 1}/{count}", flush=True)
    return np.concatenate(features), np.concatenate(labels)


def train(x: np.ndarray, y: np.ndarray, hidden: int = 32, epochs: int = 600, seed: int = 0) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    weight = torch.where(yt > 0.5, 1.0, float((y > 0.5).sum() / max(1, (y < 0.5).sum())))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt).ravel(), yt, weight=weight)
        loss.backward()
        optimiser.step()
    accuracy = float(((net(xt).ravel() > 0).float() == yt).float().mean())
    print(f"training pieces {len(y)}: printed {int(y.sum())}, loss {float(loss):.4f}, accuracy {accuracy:.4f}")
    return {"w1": net[0].weight.detach().numpy().T.copy(), "b1": net[0].bias.detach().numpy(),
            "w2": net[2].weight.detach().numpy().T.copy(), "b2": net[2].bias.detach().numpy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST folder (default: $DIGITREC_DATA)")
    parser.add_argument("--pages", type=int, default=480)
    # 0 by default: with 60 such pages, A4 pages of 12 printed lines of invoice numbers give no fields (36
    # without), but validation fields right fall (list 81.0 % against 83.6 %, table 87.0 against 88.7 %).
    parser.add_argument("--number-pages", type=int, default=0, help="pages of printed numbers only (default 0)")
    parser.add_argument("--out", default=str(Path(reader.__file__).resolve().parent.parent / "bundled"
                                             / reader.PRINTED_FILE))
    parser.add_argument("--cache", help="save/load the examples of the --pages here (.npz)")
    args = parser.parse_args()
    if args.cache and Path(args.cache).is_file():
        with np.load(args.cache, allow_pickle=False) as cached:
            x, y = cached["x"], cached["y"]
    else:
        digits = data.load(args.data, "train")
        x, y = examples(args.pages, digits.subset(line_split(len(digits))[0]))
        if args.cache:
            np.savez_compressed(args.cache, x=x, y=y)
    if args.number_pages:
        numbers = number_examples(args.number_pages)
        x, y = np.concatenate([x, numbers[0]]), np.concatenate([y, numbers[1]])
    np.savez(args.out, **train(x, y))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
