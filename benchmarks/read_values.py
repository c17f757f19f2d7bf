"""Values with signs and numbers in handwriting fonts, read as `digitrec read` reads them, on the validation
benches (choices are made on these; the test benches are only read to report):
- values:  scripts/make_values.py --split validation (set-aside training digits, the project's signs) with its
           fonts-val group (values in the validation half of the handwriting fonts);
- numbers: the fonts-val group of scripts/make_numbers.py (numbers, digits only, in the same fonts).

Per group: the share of strings right; at the confidence threshold that keeps at least 90 % of the fields, the
share of those right; the read rate at a 0.5 % error rate (check-reading style: fields kept and right, a share
of all, where fields kept and wrong are at most 0.5 % of all); the errors that add a 1 (one digit read as two),
with how many of them the 90 % threshold still keeps; and the share whose digits were read right, signs left
out of both the truth and the reading (what is wrong beyond the signs).

Targets (exit 1 when one fails; the figures are printed either way): each pen-drawn values group
(spaced, touching, photographed) >= 97 % of strings right; numbers in fonts >= 95 %; on each bench, at the
threshold that keeps >= 90 % of fields, >= 99.5 % of those right.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/read_values.py [--count 300] [--model RUN]
    python benchmarks/read_values.py --bench DIR     # DIR/values (values.csv) and/or DIR/numbers (numbers.csv)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import data_path, machine_line, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from make_numbers import font_numbers, load_digits  # noqa: E402
from make_values import write_values  # noqa: E402

from digitrec.core.files import atomic_write_text  # noqa: E402
from digitrec.inference.batch import read_files  # noqa: E402
from digitrec.inference.engine import load_predictor  # noqa: E402
from digitrec.reading.confidence import score_fields  # noqa: E402
from digitrec.reading.score import load_numbers  # noqa: E402

KEEP, ERROR_RATE = 0.9, 0.005
VALUES_RIGHT, FONTS_RIGHT, KEPT_RIGHT = 0.97, 0.95, 0.995
PEN_GROUPS = ("spaced", "touching", "photographed")


def make_benches(root: Path, count: int, seed: int) -> None:
    """The validation benches: root/values (make_values) and root/numbers (make_numbers' fonts-val group)."""
    write_values(root / "values", load_digits(data_path(), "validation"), count, seed, "val")
    rows = font_numbers(root / "numbers", count, seed, "val")
    if rows:
        atomic_write_text(root / "numbers" / "numbers.csv",
                          "file,text,group\n" + "".join(f"{f},{t},{g}\n" for f, t, g in rows))


def read_bench(folder: Path, predictor) -> list[tuple[str, str | None, float | None, str]]:
    """(true text, text read or None, confidence or None, group) for every picture the bench lists."""
    readings = {r.file.split("/", 1)[-1]: r.reading for r in read_files(predictor, folder)}
    rows = []
    for file, text, group in load_numbers(folder):
        reading = readings.get(file)
        rows.append((text, reading.text if reading else None, reading.confidence if reading else None, group))
    return rows


def extra_one(true: str, read: str | None) -> bool:
    """The reading is the truth with one 1 added: one digit read as two."""
    return read is not None and len(read) == len(true) + 1 and any(
        read[i] == "1" and read[:i] + read[i + 1 :] == true for i in range(len(read)))


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def table_rows(bench: str, rows: list, report: dict) -> list[dict]:
    out = []
    for group, figures in [*report["groups"].items(), ("all", report["all"])]:
        part = [r for r in rows if group == "all" or r[3] == group]
        c = figures["calibration"]
        split = [r for r in part if extra_one(r[0], r[1])]
        kept_split = sum(1 for r in split if (r[2] or 0.0) >= c["keep_threshold"])
        read_at = "-" if c["read_threshold"] is None else f"{c['read_rate']:.1%} (>= {c['read_threshold']:.3f})"
        digits_right = sum(r[1] is not None and _digits(r[1]) == _digits(r[0]) for r in part) / len(part)
        out.append({"bench": bench, "group": group, "fields": figures["n"],
                    "strings right": f"{figures['string_accuracy']:.1%}", "digits alone right": f"{digits_right:.1%}",
                    "90% kept: threshold": f"{c['keep_threshold']:.3f}", "kept": f"{c['kept']:.1%}",
                    "kept right": f"{c['kept_accuracy']:.1%}", f"read rate at {ERROR_RATE:.1%} error": read_at,
                    "extra-1 errors (kept)": f"{len(split)} ({kept_split})"})
    return out


def targets(reports: dict[str, dict]) -> list[tuple[str, float, float]]:
    """(target, figure, bar) for every target whose bench was read."""
    checks = []
    values = reports.get("values")
    if values:
        for group in PEN_GROUPS:
            if group in values["groups"]:
                checks.append((f"values {group} strings right", values["groups"][group]["string_accuracy"],
                               VALUES_RIGHT))
    numbers = reports.get("numbers")
    if numbers:
        for group, figures in numbers["groups"].items():
            if group.startswith("fonts"):
                checks.append((f"numbers {group} strings right", figures["string_accuracy"], FONTS_RIGHT))
    for bench, report in reports.items():
        checks.append((f"{bench}: right of the {KEEP:.0%} kept", report["all"]["calibration"]["kept_accuracy"],
                       KEPT_RIGHT))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, help="benches made before (DIR/values, DIR/numbers)")
    parser.add_argument("--count", type=int, default=300, help="pictures a group, when the benches are made here")
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="read-values-") as scratch:
        root = args.bench or Path(scratch)
        if args.bench is None:
            start = time.perf_counter()
            make_benches(root, args.count, args.seed)
            print(f"made the validation benches ({args.count} a group) in {time.perf_counter() - start:.0f} s")
        predictor = load_predictor(args.model)
        reports, table = {}, []
        for bench in ("values", "numbers"):
            if not (root / bench).is_dir():
                continue
            start = time.perf_counter()
            rows = read_bench(root / bench, predictor)
            print(f"read {bench}: {len(rows)} pictures in {time.perf_counter() - start:.0f} s")
            reports[bench] = score_fields(rows, KEEP, ERROR_RATE)
            table += table_rows(bench, rows, reports[bench])
    if not reports:
        sys.exit(f"no values/ or numbers/ bench in {root}")
    print_table(table)
    failed = 0
    for name, figure, bar in targets(reports):
        failed += figure < bar
        print(f"{'ok  ' if figure >= bar else 'FAIL'} {name}: {figure:.1%} (target >= {bar:.1%})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
