"""Reading whole pages: every page of a page bench read with `digitrec.reading.page.read_page`, scored with
fields aligned in reading order (`digitrec.reading.page_score`), per layout, against the targets:

- each layout: >= 97 % of fields right, >= 85 % of whole pages right, an invented field on <= 1 % of pages;
- beside them, the digits right in the fields found whole (neither split nor merged), the share of those
  fields with every digit right as read and as independent misreads would make it, and the digits right the
  field and page targets ask if digits are misread independently and nothing else goes wrong
  (`page_score.needed_digit_accuracy`): how far the digit reader is from what a target asks;
- a second table: fields, whole pages and digits right on the pages in MNIST digits by resolution (dpi) and by look;
- speed: p50 <= 400 ms for a 1200 x 1500 page with 8 fields (decoding the JPEG included), on this machine,
  and <= 500 ms for the same pages through `POST /api/page` of a real server on loopback, one at a time.

Without --bench it first makes a validation bench (set-aside MNIST training digits, `make_pages.py --split
validation`) in a temporary folder (or --keep DIR); the test bench (`make_pages.py --split test`) is only read
to report, with --bench. Exits 1 when a target is missed.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/read_pages.py [--count 100] [--bench DIR] [--fonts 10]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import data_path, machine_line, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

from digitrec import data  # noqa: E402
from digitrec.core.errors import DigitrecError  # noqa: E402
from digitrec.data import pages  # noqa: E402
from digitrec.inference.engine import load_predictor  # noqa: E402
from digitrec.reading.line import line_split  # noqa: E402
from digitrec.reading.page import open_page  # noqa: E402
from digitrec.reading.page_score import needed_digit_accuracy, score_pages  # noqa: E402

TARGETS = {"fields_right": 0.97, "pages_right": 0.85, "invented_pages": 0.01}
SPEED_MS = 400.0
API_MS = 500.0  # the same page through the server's /api/page
SPEED_PAGE = {"size": (1200, 1500), "fields": 8}


@functools.lru_cache(maxsize=1)
def validation_hand() -> pages.DigitHand:
    """The set-aside MNIST training digits (never in the line model's training lines)."""
    train = data.load(data_path(), "train")
    digits = train.subset(line_split(len(train))[1])
    return pages.DigitHand(digits.x, digits.y)


def make_bench(folder: Path, count: int, fonts: int, seed: int) -> list[dict]:
    """A validation bench: `count` pages a layout from the set-aside training digits, `fonts` in fonts."""
    hands: list[tuple[str, pages.Hand, int]] = [("mnist", validation_hand(), count)]
    if fonts and pages.handwriting_fonts():
        hands.append(("font", pages.FontHand(pages.handwriting_fonts()), fonts))
    start = time.perf_counter()
    records = pages.write_bench(folder, hands, seed)
    print(f"made {len(records)} validation pages in {folder} in {time.perf_counter() - start:.0f} s")
    return records


def read_all(folder: Path, records: list[dict], read_page, predictor) -> tuple[dict, dict[str, float], int]:
    """Every page read: fields read per file, milliseconds per file (decoding included), pages refused."""
    line_model = predictor.line_model
    read, times, refused = {}, {}, 0
    for record in records:
        payload = (folder / record["file"]).read_bytes()
        start = time.perf_counter()
        try:
            read[record["file"]] = read_page(open_page(payload), predictor, line_model).fields
        except DigitrecError:
            read[record["file"]], refused = [], refused + 1
        times[record["file"]] = 1000 * (time.perf_counter() - start)
    return read, times, refused


def speed_payloads(count: int = 12) -> list[bytes]:
    """JPEGs of photographed 1200 x 1500 list pages with 8 fields."""
    hand = validation_hand()
    return [pages.render_page("list", hand, seed=900 + n, look="photographed", **SPEED_PAGE).encode()[0]
            for n in range(count)]


def speed_pages(predictor, read_page, payloads: list[bytes]) -> list[float]:
    """Milliseconds to read each page in-process, from its JPEG bytes."""
    read_page(open_page(payloads[0]), predictor, predictor.line_model)  # warm-up
    out = []
    for payload in payloads:
        start = time.perf_counter()
        read_page(open_page(payload), predictor, predictor.line_model)
        out.append(1000 * (time.perf_counter() - start))
    return out


def speed_api(payloads: list[bytes], model: str | None) -> list[float]:
    """Milliseconds for each page through `POST /api/page` of a real server on loopback, one at a time."""
    with running_server(*(["--model", model] if model else [])) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        out = []
        try:
            for n, payload in enumerate(payloads[:2] + payloads):  # two to warm up
                start = time.perf_counter()
                connection.request("POST", "/api/page", body=payload, headers={"Content-Type": "image/jpeg"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"/api/page answered {response.status}")
                if n >= 2:
                    out.append(1000 * (time.perf_counter() - start))
        finally:
            connection.close()
    return out


def _pct(share: float) -> str:
    return f"{100 * share:.1f}"


def digits_asked(results: list) -> str:
    """The digits right that the field and page targets ask of these pages (`page_score.PageResult`s) if digits
    are misread independently and nothing else goes wrong: `fields % / pages %`."""
    fields = [n for r in results for n in r.field_digits]
    return (f"{_pct(needed_digit_accuracy(fields, TARGETS['fields_right']))} / "
            f"{_pct(needed_digit_accuracy([r.page_digits for r in results], TARGETS['pages_right']))}")


def _digits_columns(s: dict) -> dict:
    """The digits right in the fields found whole, and the share of those fields with every digit right as read
    and as independent misreads at that rate would make it ("-" where no field was found whole)."""
    if "digits_right" not in s:
        return {"digits right %": "-", "all digits right: read / if independent %": "-"}
    return {"digits right %": _pct(s["digits_right"]),
            "all digits right: read / if independent %": f"{_pct(s['found_all_digits_right'])} / "
                                                         f"{_pct(s['found_all_digits_right_if_independent'])}"}


def report(records: list[dict], read: dict, times: dict[str, float]) -> tuple[list[dict], list[str], dict]:
    """The table's rows, the targets missed and the scores."""
    for r in records:
        r["group"] = r["layout"] if r.get("hand", "mnist") == "mnist" else f"{r['hand']}-{r['layout']}"
    scores = score_pages(records, read, key="group")
    rows, missed = [], []
    for group, s in scores["groups"].items():
        ms = [times[r["file"]] for r in records if r["group"] == group]
        confidence = s.get("confidence")
        rows.append({"group": group, "pages": s["pages"], "fields": s["fields"],
                     "fields right %": _pct(s["fields_right"]), "pages right %": _pct(s["pages_right"]),
                     "invented pages %": _pct(s["invented_pages"]),
                     "missed/wrong/split/merged/order": f"{s['missed']}/{s['wrong']}/{s['split']}/{s['merged']}/"
                                                       f"{s['out_of_order']}",
                     "kept at 90 %: right %": _pct(confidence["accuracy"]) if confidence else "-",
                     **_digits_columns(s),
                     "digits asked: fields / pages %": digits_asked([r for r in scores["pages"] if r.group == group]),
                     "p50 ms": f"{statistics.median(ms):.0f}"})
        if group in pages.LAYOUTS:
            for name, target in TARGETS.items():
                ok = s[name] <= target if name == "invented_pages" else s[name] >= target
                if not ok:
                    sign = "<=" if name == "invented_pages" else ">="
                    missed.append(f"{group}: {name} {_pct(s[name])} % (target {sign} {_pct(target)} %)")
    return rows, missed, scores


def by_condition(records: list[dict], read: dict) -> list[dict]:
    """Fields and whole pages right on the pages in MNIST digits, by resolution and by look (photographed or
    scanned), all layouts together: a model card's figures disaggregated by condition."""
    mnist = [r for r in records if r.get("hand", "mnist") == "mnist"]
    rows = []
    for key, label, order in (("dpi", "{} dpi", int), ("look", "{}", str)):
        if not mnist or any(key not in r for r in mnist):
            continue  # a bench made before its pages recorded this
        groups = score_pages(mnist, read, key=key)["groups"]
        for group, s in sorted(groups.items(), key=lambda g: order(g[0])):
            rows.append({"condition": label.format(group), "pages": s["pages"], "fields": s["fields"],
                         "fields right %": _pct(s["fields_right"]), "pages right %": _pct(s["pages_right"]),
                         "digits right %": _digits_columns(s)["digits right %"]})
    return rows


def show_failures(records: list[dict], read: dict, scores: dict, count: int) -> None:
    wrong = [p for p in scores["pages"] if not p.page_right][:count]
    by_file = {r["file"]: r for r in records}
    for p in wrong:
        truth = [f["text"] for f in by_file[p.file]["fields"]]
        got = [f["text"] if isinstance(f, dict) else f.text for f in read[p.file]]
        print(f"  {p.file}: truth {truth} read {got} (missed {p.missed}, wrong {p.wrong}, split {p.split}, "
              f"invented {p.invented}, out of order {p.out_of_order})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, help="a bench folder from scripts/make_pages.py (default: make one)")
    parser.add_argument("--keep", type=Path, help="make the validation bench in this folder and keep it")
    parser.add_argument("--count", type=int, default=100,
                        help="pages a layout in the bench made (100: one invented page is the 1 %% allowed)")
    parser.add_argument("--fonts", type=int, default=0, help="pages a layout in handwriting fonts in the bench made")
    parser.add_argument("--seed", type=int, default=3031, help="the made bench's seed (the test bench uses 2028)")
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    parser.add_argument("--failures", type=int, default=5, help="pages read wrong to show")
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()
    try:
        from digitrec.reading.page import read_page  # noqa: PLC0415  (the page reader may not exist yet)
    except ImportError:
        sys.exit("digitrec.reading.page.read_page does not exist yet: no page reader to benchmark")
    print(machine_line())
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.bench or args.keep or Path(scratch)
        records = pages.read_bench(folder) if args.bench else make_bench(folder, args.count, args.fonts, args.seed)
        predictor = load_predictor(args.model)
        read, times, refused = read_all(folder, records, read_page, predictor)
    rows, missed, scores = report(records, read, times)
    print_table(rows)
    conditions = by_condition(records, read)
    if conditions:
        print()
        print_table(conditions)
    if refused:
        print(f"{refused} pages refused with an error (scored as no fields)")
    show_failures(records, read, scores, args.failures)
    payloads = speed_payloads()
    speed = speed_pages(predictor, read_page, payloads)
    p50 = statistics.median(speed)
    print(f"1200x1500 page, 8 fields, photographed JPEG: p50 {p50:.0f} ms, p95 {np.percentile(speed, 95):.0f} ms "
          f"(target p50 <= {SPEED_MS:.0f} ms)")
    if p50 > SPEED_MS:
        missed.append(f"speed: p50 {p50:.0f} ms for a 1200x1500 page with 8 fields (target <= {SPEED_MS:.0f} ms)")
    api = speed_api(payloads, args.model)
    api_p50 = statistics.median(api)
    print(f"the same pages through POST /api/page, real server: p50 {api_p50:.0f} ms, p95 "
          f"{np.percentile(api, 95):.0f} ms (target p50 <= {API_MS:.0f} ms)")
    if api_p50 > API_MS:
        missed.append(f"speed: p50 {api_p50:.0f} ms for a page through /api/page (target <= {API_MS:.0f} ms)")
    if args.json:
        args.json.write_text(json.dumps({"groups": scores["groups"], "conditions": conditions, "speed_p50_ms": p50,
                                         "api_p50_ms": api_p50},
                                        indent=1) + "\n")
    if missed:
        print("MISSED: " + "; ".join(missed))
        sys.exit(1)
    print("all targets met")


if __name__ == "__main__":
    main()
