"""Train the page reader's printed-or-handwritten classifier (digitrec/bundled/printed.npz).

Pages from `digitrec.data.pages` with MNIST *training* digits (less the part `reading.line.line_split` sets
aside, which the page bench's validation pages are made from; never test digits, never handwriting fonts), a
quarter of them with pen-drawn digits (`data.synthetic.drawn_digits`), and printed fonts (DejaVu, Liberation)
for the labels. Each page is analysed as `read_page` analyses it; every
piece of ink is labelled handwriting when its word lies in a field's box, else printed (labels, headings, rule
stubs, dirt).
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
    parser.add_argument("--out", default=str(Path(reader.__file__).resolve().parent.parent / "bundled"
                                             / reader.PRINTED_FILE))
    parser.add_argument("--cache", help="save/load the examples here (.npz)")
    args = parser.parse_args()
    if args.cache and Path(args.cache).is_file():
        with np.load(args.cache) as cached:
            x, y = cached["x"], cached["y"]
    else:
        digits = data.load(args.data, "train")
        x, y = examples(args.pages, digits.subset(line_split(len(digits))[0]))
        if args.cache:
            np.savez_compressed(args.cache, x=x, y=y)
    np.savez(args.out, **train(x, y))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
