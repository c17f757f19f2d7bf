"""Write an archive of N pictures for the cluster bench: MNIST *test* digits photographed small (a meter or form
crop, 48-96 px, JPEG), as old low-resolution scans, or in faint pencil (digitrec.data.synthetic's real-world
renderers), in a sharded folder tree OUT/<shard>/<index>.<ext>, 1,000 pictures a folder. The answers go to a
hidden file, OUT/.answers.csv (file,digit,test_index), which no digitrec reader lists.

    DIGITREC_DATA=../shared/data/mnist python scripts/make_archive.py 1000000 archive --processes 2

The same N and --seed give the same pictures, whatever --processes. Training never sees these digits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.data import synthetic

PER_FOLDER = 1000
CHUNK = 10_000  # pictures per job: each job's pictures come from its own seeded stream


def render(kind: float, image28: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    if kind < 0.7:
        return synthetic.photo_of(image28, rng, sizes=(48, 96)), ".jpg"
    if kind < 0.85:
        return synthetic.lowres_scan(image28, rng), ".png"
    return synthetic.pencil(image28, rng), ".jpg"


def write_chunk(out: str, start: int, stop: int, seed: int, source: str) -> list[str]:
    test = data.load(source, "test")
    rng = np.random.default_rng([seed, start // CHUNK])
    rows = []
    for i in range(start, stop):
        j = int(rng.integers(len(test)))
        payload, ext = render(rng.random(), test.x[j], rng)
        name = f"{i // PER_FOLDER:05d}/{i:08d}{ext}"
        path = Path(out) / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(payload)
        rows.append(f"{name},{int(test.y[j])},{j}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", default=os.environ.get(data.DATA_ENV), help="MNIST folder (its test split)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"make_archive: {out} already exists and is not empty", file=sys.stderr)
        return 2
    if args.count < 1 or not args.data:
        print("make_archive: give a positive count and the MNIST folder (--data or $DIGITREC_DATA)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    chunks = [(str(out), s, min(s + CHUNK, args.count), args.seed, args.data) for s in range(0, args.count, CHUNK)]
    with open(out / ".answers.csv.tmp", "w") as answers:
        answers.write("file,digit,test_index\n")
        with ProcessPoolExecutor(args.processes) as pool:
            for done, rows in enumerate(pool.map(write_chunk, *zip(*chunks, strict=True)), start=1):
                answers.write("\n".join(rows) + "\n")
                print(f"\r{min(done * CHUNK, args.count):,} pictures", end="", file=sys.stderr, flush=True)
    os.replace(out / ".answers.csv.tmp", out / ".answers.csv")
    print(f"\n{args.count:,} pictures in {out} ({time.perf_counter() - start:.0f} s); answers in "
          f"{out / '.answers.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
