"""CSV in and out: `read --score`'s numbers.csv refused in one line naming the file and the line (a UTF-8
byte-order mark accepted); every CSV digitrec writes quoted by the csv module, no cell read as a spreadsheet
formula, numbers left numbers."""

import csv
import io
import os
import re
from pathlib import Path

import pytest

from digitrec.cli import main
from digitrec.core.csvout import FORMULA_STARTS, csv_text, spreadsheet_safe
from digitrec.core.errors import DigitrecError
from digitrec.data import synthetic
from digitrec.reading.score import NUMBERS_MAX_FIELD, load_numbers


def _bench(folder: Path, numbers: bytes) -> Path:
    """A folder with one picture of a 7 and the given numbers.csv."""
    folder.mkdir()
    images, _ = synthetic.drawn_digits(8, seed=3)
    (folder / "0.png").write_bytes(synthetic.png_bytes(images[7]))
    (folder / "numbers.csv").write_bytes(numbers)
    return folder


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("numbers", "line", "message"), [
    (b"file,text,group\n0.png,,spaced\n", 2, "empty text"),
    (b"file,text,group\n0.png,7,spaced\n1.png\n", 3, "1 fields, the header has 3"),
    (b"file,text,group\n0.png,7,spaced,extra\n", 2, "4 fields, the header has 3"),
    (b"file,text,group\n0.png,7,spaced\ncaf\xe9.png,12,spaced\n", 3, "byte 0xe9 is not UTF-8"),
    (b"file,text,group\n" + b"x" * 200_000 + b".png,12,spaced\n", 2, "field larger than field limit"),
    (b"file,text,group\n" + b"x" * 5_000 + b".png,12,spaced\n", 2, "a field of 5,004 characters"),
    (b"file,text,group\n0.png,7a,spaced\n", 2, "text '7a'"),
    (b"file,text,group\n0.png,7,a\n0.png,7,b\n", 3, "listed again (first at line 2)"),
    (b"name,digits\n0.png,7\n", 1, "no file and text columns"),
    (b"file,text,group\n, 7,spaced\n", 2, "no file name"),
])
def test_a_bad_numbers_csv_is_one_line_naming_file_and_line(tmp_path, capsys, numbers, line, message):
    bench = _bench(tmp_path / "bench", numbers)
    code, out, err = _run(capsys, ["read", str(bench), "--score"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bench / 'numbers.csv'}, line {line}: " in err and message in err


def test_a_numbers_csv_that_cannot_be_read_is_one_line(tmp_path, capsys):
    bench = _bench(tmp_path / "bench", b"")
    (bench / "numbers.csv").unlink()
    # Reading /proc/self/mem at offset 0 fails with EIO: an I/O error without a device.
    os.symlink("/proc/self/mem", bench / "numbers.csv")
    code, _, err = _run(capsys, ["read", str(bench), "--score"])
    assert code == 2 and err.count("\n") == 1
    assert "cannot read numbers.csv (Input/output error)" in err and str(bench / "numbers.csv") in err


def test_an_empty_numbers_csv_is_one_line(tmp_path, capsys):
    bench = _bench(tmp_path / "bench", b"file,text,group\n\n")
    code, _, err = _run(capsys, ["read", str(bench), "--score"])
    assert code == 2 and "lists no pictures" in err and err.count("\n") == 1


def test_a_byte_order_mark_before_the_header_is_accepted(tmp_path, capsys):
    bench = _bench(tmp_path / "bench", "\ufefffile,text,group\r\n0.png,7,spaced\r\n".encode())
    code, out, err = _run(capsys, ["read", str(bench), "--score", "--json"])
    assert code == 0, err
    assert '"spaced"' in out and '"string_accuracy": 1.0' in out


def test_numbers_rows_are_parsed_as_csv(tmp_path):
    (tmp_path / "numbers.csv").write_text('file,text\n"a,b.png",12\n"say ""hi"".png", 3 \n')
    assert load_numbers(tmp_path) == [("a,b.png", "12", "all"), ('say "hi".png', "3", "all")]
    (tmp_path / "numbers.csv").write_text("file,text\nx.png," + "1" * (NUMBERS_MAX_FIELD + 1) + "\n")
    with pytest.raises(DigitrecError, match="line 2"):
        load_numbers(tmp_path)


# ---------------------------------------------------------------- what digitrec writes


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_that_would_start_a_formula_is_made_text(start):
    assert spreadsheet_safe(f"{start}HYPERLINK(\"http://x\")") == f"'{start}HYPERLINK(\"http://x\")"


def test_numbers_and_plain_text_are_left_alone():
    for cell in (0.97, 3, None, "-0.5", "+1", "12.png", "runs/trial-001", "'quoted"):
        assert spreadsheet_safe(cell) == cell


def test_csv_text_quotes_what_would_break_a_row():
    names = ["a,b.png", 'say "hi".png', "two\nlines.png", "=1+2.png", "plain.png"]
    text = csv_text(["file", "confidence"], [(name, 0.5) for name in names])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["file", "confidence"] and len(rows) == 1 + len(names)
    assert [r[0] for r in rows[1:]] == ["a,b.png", 'say "hi".png', "two\nlines.png", "'=1+2.png", "plain.png"]
    assert all(line.endswith(",0.5") for line in text.splitlines()[1:] if "," in line and "two" not in line)


def test_read_out_quotes_file_names_and_keeps_formulas_out(tmp_path, capsys):
    folder = tmp_path / '=HYPERLINK("x")'  # the file column starts with the folder's name
    folder.mkdir()
    images, _ = synthetic.drawn_digits(8, seed=3)
    names = ["a,b.png", 'say "hi".png', "two\nlines.png", "-2+3.png"]
    for name in names:
        (folder / name).write_bytes(synthetic.png_bytes(images[7]))
    out = tmp_path / "out.csv"
    code, _, err = _run(capsys, ["read", str(folder), "--out", str(out)])
    assert code == 0, err
    text = out.read_text()
    assert text.startswith("file,text,confidence\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["file"] for r in rows) == sorted(f"'{folder.name}/{name}" for name in names)
    for row in rows:
        assert row["text"] == "7" and 0 < float(row["confidence"]) <= 1
    assert re.search(r'"[0-9]', text) is None  # numbers stay numbers: never quoted


def test_read_out_leaves_an_unreadable_picture_empty(tmp_path, capsys):
    folder = tmp_path / "@pics"
    folder.mkdir()
    images, _ = synthetic.drawn_digits(8, seed=3)
    (folder / "blank.png").write_bytes(synthetic.png_bytes(images[0].point(lambda v: 255)))
    (folder / "seven.png").write_bytes(synthetic.png_bytes(images[7]))
    out = tmp_path / "out.csv"
    assert _run(capsys, ["read", str(folder), "--out", str(out)])[0] == 2  # the blank picture is an error
    lines = out.read_text().splitlines()
    assert lines[1] == "'@pics/blank.png,," and lines[2].startswith("'@pics/seven.png,7,0.")


def test_the_sweep_table_keeps_paths_and_settings_from_becoming_formulas(tmp_path):
    from digitrec.cluster.sweeps import _write_sweep_table

    row = {"trial": "trial-000", "teacher": "=cmd|' /C calc'!A0", "lr": 0.01, "epochs": 2, "val_accuracy": 0.91,
           "val_loss": -0.5, "status": "finished", "run_dir": "/runs/a,b"}
    path = _write_sweep_table(tmp_path, [row], ["teacher", "lr"])
    lines = path.read_text().splitlines()
    assert lines[0] == "trial,teacher,lr,epochs,val_accuracy,val_loss,status,run_dir"
    assert lines[1] == "trial-000,'=cmd|' /C calc'!A0,0.01,2,0.91,-0.5,finished,\"/runs/a,b\""
