"""Shared by the benchmarks: where the data is, what machine this is, how to print a table."""

from __future__ import annotations

import os
import sys

from digitrec import hardware
from digitrec.data import DATA_ENV


def data_path() -> str:
    path = os.environ.get(DATA_ENV)
    if not path:
        sys.exit(f"set {DATA_ENV} to the MNIST folder (e.g. ../shared/data/mnist)")
    return path


def machine_line() -> str:
    info = hardware.describe()
    return (f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads, ISA {info['isa']}, "
            f"bf16 autocast {'on' if info['bf16_autocast'] else 'off'}, torch {info['torch']}, "
            f"python {info['python']}")


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    cells = [header] + [[str(r[h]) for h in header] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
