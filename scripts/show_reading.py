"""Draw what `digitrec read` found on the picture itself: a box around each digit, with the digit and its
confidence above it, and the whole text at the top.

    python scripts/show_reading.py docs/number-2026.jpg docs/reading.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from digitrec import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("picture", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    args = parser.parse_args()
    reading = load_model(args.model).read(args.picture)
    image = Image.open(args.picture).convert("RGB")
    band = 44
    canvas = Image.new("RGB", (image.width, image.height + band), "white")
    canvas.paste(image, (0, band))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 18)
        big = ImageFont.truetype("DejaVuSans-Bold.ttf", 24)
    except OSError:
        font = big = ImageFont.load_default()
    draw.text((8, 8), f"read: {reading.text}   ({reading.confidence:.0%} for the whole number)", fill="#1f6feb",
              font=big)
    for d in reading.digits:
        x0, y0, x1, y1 = d.box
        draw.rectangle((x0, y0 + band, x1, y1 + band), outline="#e8590c", width=3)
        draw.text((x0 + 2, max(band, y0 + band - 22)), f"{d.digit} {d.confidence:.0%}", fill="#e8590c", font=font)
    canvas.save(args.out)
    print(f"{args.picture}: {reading.text} -> {args.out}")


if __name__ == "__main__":
    main()
