"""The page bench: synthetic pages of handwritten fields in three layouts (list, table, boxes), for
`benchmarks/read_pages.py` and the page reader (`digitrec read --page`).

Each page is a form up to A4 (150-300 dpi) with printed labels, headers, grids or boxes (never fields) and
handwritten values (digits, and values with signs where `digitrec.data.signs` draws them), scanned or
photographed (see `digitrec.data.pages`). Writes OUT/<layout>/<n>.jpg and OUT/pages.json: per page its file,
layout, look, dpi, size, the fields in reading order ({text, box [x0, y0, x1, y1], layout, kind}) and the boxes
of its printed words.

- `--split test`: digits from MNIST *test*: the bench that is read only to report;
- `--split validation`: the set-aside *training* digits the line model never trains on
  (`digitrec.reading.line.line_split`): the bench choices are made on.
- `--fonts N`: N more pages a layout written in handwriting fonts (OUT/<layout>/font-<n>.jpg, "hand": "font"),
  other people's hands: validation and test benches only, never training.

- `--examples DIR`: instead, the three small example pages of the docs and tests (DIR/page-<layout>.jpg at
  150 dpi, from validation digits, under 200 KB each) and their truth (DIR/page-examples.json).

    DIGITREC_DATA=../shared/data/mnist python scripts/make_pages.py --out pages-val --split validation --count 100
    DIGITREC_DATA=../shared/data/mnist python scripts/make_pages.py --examples docs
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

from PIL import Image

from digitrec import data
from digitrec.data import pages
from digitrec.reading.line import line_split


def digit_hand(data_path: str | None, split: str) -> pages.DigitHand:
    """MNIST digits of the split: test, or the training digits set aside from the line model's training."""
    if split == "validation":
        train = data.load(data_path, "train")
        digits = train.subset(line_split(len(train))[1])
    else:
        digits = data.load(data_path, "test")
    return pages.DigitHand(digits.x, digits.y)


EXAMPLES = {"list": (1, "photographed"), "table": (2, "scanned"), "boxes": (3, "photographed")}  # seed, look


def write_examples(folder: Path, hand: pages.Hand) -> None:
    """The docs' example pages, one a layout, and their truth."""
    truth = []
    for layout, (seed, look) in EXAMPLES.items():
        page = pages.render_page(layout, hand, seed, look=look, dpi=150)
        buffer = io.BytesIO()
        Image.fromarray(page.pixels).save(buffer, format="JPEG", quality=70, optimize=True)
        name = f"page-{layout}.jpg"
        (folder / name).write_bytes(buffer.getvalue())
        truth.append(page.truth(name))
        print(f"{folder / name}: {len(buffer.getvalue()) // 1024} KB, {[f.text for f in page.fields]}")
    (folder / "page-examples.json").write_text(json.dumps({"pages": truth}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--out", type=Path, default=Path("pages"))
    parser.add_argument("--count", type=int, default=100, help="pages per layout")
    parser.add_argument("--fonts", type=int, default=0, help="pages per layout in handwriting fonts")
    parser.add_argument("--seed", type=int, default=2028)
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--layouts", default=",".join(pages.LAYOUTS), help="comma-separated")
    parser.add_argument("--examples", type=Path, help="write only the docs' example pages into this folder")
    args = parser.parse_args(argv)
    if args.examples:
        write_examples(args.examples, digit_hand(args.data, "validation"))
        return
    layouts = tuple(args.layouts.split(","))
    unknown = [name for name in layouts if name not in pages.LAYOUTS]
    if unknown:
        parser.error(f"unknown layouts {unknown} (expected some of {', '.join(pages.LAYOUTS)})")
    hands: list[tuple[str, pages.Hand, int]] = [("mnist", digit_hand(args.data, args.split), args.count)]
    if args.fonts:
        fonts = pages.handwriting_fonts()
        if not fonts:
            parser.error("--fonts: no handwriting fonts installed (Debian: fonts-dkg-handwriting fonts-breip ...)")
        hands.append(("font", pages.FontHand(fonts), args.fonts))
    start = time.perf_counter()
    records = pages.write_bench(args.out, hands, args.seed, layouts)
    print(f"wrote {len(records)} pages to {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
