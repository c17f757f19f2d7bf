"""`to_mnist` of this checkout against another one's, alternating picture by picture in one process, so that a
noisy host's drift falls on both alike; checks that both give the same 28x28.

    git worktree add /tmp/base <commit>
    python benchmarks/preprocess_ab.py /tmp/base/src [--count 400] [--rounds 5]

Pictures: 280x280 drawings and photographed digits (as `read_speed.py`), and realworld-val's sets when
`--sets realworld-val` names their folder (every fourth picture of each set).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from common import machine_line, print_table


def load_preprocess(src: str | None) -> SimpleNamespace:
    """`to_mnist` and `open_image` from `src` (None: this checkout's): its digitrec.imaging.fit and .decode, or
    digitrec.imaging.preprocess where it is older, as an object of their own."""
    for name in [m for m in sys.modules if m == "digitrec" or m.startswith("digitrec.")]:
        del sys.modules[name]
    if src:
        sys.path.insert(0, src)
    try:
        try:
            fit = importlib.import_module("digitrec.imaging.fit")
            decode = importlib.import_module("digitrec.imaging.decode")
        except ModuleNotFoundError:
            fit = decode = importlib.import_module("digitrec.imaging.preprocess")
    finally:
        if src:
            sys.path.remove(src)
    return SimpleNamespace(to_mnist=fit.to_mnist, open_image=decode.open_image)


def picture_groups(count: int, sets: Path | None, open_image, to_mnist) -> dict[str, list]:
    from digitrec.data import synthetic

    drawings = [open_image(synthetic.png_bytes(im)) for im in synthetic.drawn_digits(count, seed=5)[0]]
    rng = np.random.default_rng(1)
    groups = {"280x280 drawing": drawings,
              "photographed digit (200-400 px)": [open_image(synthetic.photo_of(to_mnist(d), rng)) for d in drawings]}
    for folder in sorted(p for p in (sets.iterdir() if sets else []) if p.is_dir()):
        files = sorted(f for f in folder.rglob("*") if f.suffix in (".png", ".jpg"))[::4]
        groups[f"{sets.name}/{folder.name}"] = [open_image(f.read_bytes()) for f in files]
    return groups


def alternate(old, new, pictures: list, rounds: int) -> tuple[list[float], list[float], int]:
    """Per-picture times (ms, the least over rounds) of old and new, and how many answers differ."""
    old_ms, new_ms, differ = [], [], 0
    for picture in pictures:
        times = {old: [], new: []}
        answers = {}
        for _ in range(rounds):
            for module in (old, new) if len(times[old]) % 2 == 0 else (new, old):
                start = time.perf_counter()
                try:
                    answers[module] = module.to_mnist(picture).tobytes()
                except Exception as error:  # a refusal is an answer too
                    answers[module] = type(error).__name__
                times[module].append(1000 * (time.perf_counter() - start))
        old_ms.append(min(times[old]))
        new_ms.append(min(times[new]))
        differ += answers[old] != answers[new]
    return old_ms, new_ms, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_src", help="the other checkout's src folder")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sets", type=Path, help="a folder of real-world sets (make_realworld.py's output)")
    args = parser.parse_args()
    print(machine_line())
    old = load_preprocess(args.base_src)
    new = load_preprocess(None)
    groups = picture_groups(args.count, args.sets, new.open_image, new.to_mnist)
    rows = []
    for name, pictures in groups.items():
        old_ms, new_ms, differ = alternate(old, new, pictures, args.rounds)
        ratio = statistics.median(n / o for n, o in zip(new_ms, old_ms, strict=True))
        rows.append({"pictures": f"{name} ({len(pictures)})", "base p50 ms": f"{statistics.median(old_ms):.3f}",
                     "this p50 ms": f"{statistics.median(new_ms):.3f}",
                     "base p95": f"{np.percentile(old_ms, 95):.2f}", "this p95": f"{np.percentile(new_ms, 95):.2f}",
                     "median ratio": f"{ratio:.3f}", "answers differ": str(differ)})
    print_table(rows)


if __name__ == "__main__":
    main()
