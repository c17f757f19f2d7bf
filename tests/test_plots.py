import re

import numpy as np
import pytest
from conftest import copy_run, write_kaggle_csv
from PIL import Image

from digitrec import data
from digitrec.inference import plots
from digitrec.inference.engine import Predictor
from digitrec.inference.metrics import evaluate, held_out
from digitrec.inference.report import write_report


def assert_figure(path):
    assert path.exists(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.load()
        pixels = np.asarray(image.convert("L"))
    assert width >= 800 and 150 <= height <= 3000, (path, image.size)
    assert pixels.std() > 10, f"{path} looks empty"


def test_training_leaves_figures(trained_run):
    pngs = sorted(p.name for p in trained_run.glob("*.png"))
    assert {"curves.png", "confusion.png", "per_class.png", "errors.png", "samples.png"} <= set(pngs)
    for name in pngs:
        assert_figure(trained_run / name)


def test_report_shows_every_figure_offline(trained_run, digits_dir, tmp_path):
    small_run = copy_run(trained_run, tmp_path / "run")  # the report adds its figures to the run folder
    predictor = Predictor.load(small_run)
    digits, split = held_out(digits_dir, predictor.config)
    assert split == "test"
    page = write_report(small_run, evaluate(predictor.probabilities(digits.x), digits), digits, split).read_text()
    pngs = sorted(small_run.glob("*.png"))
    assert len(pngs) >= 7  # five from training, two from the report
    for png in pngs:
        assert f'data-file="{png.name}"' in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(pngs)
    assert not re.search(r'(src|href)="https?://', page)  # opens with no network


@pytest.mark.slow  # about 6 s: matplotlib's layout of the digit grids
def test_data_check_plots_for_a_kaggle_csv(tmp_path, digits):
    path = write_kaggle_csv(tmp_path / "train.csv", digits["train"].x[:300], digits["train"].y[:300])
    written = plots.data_figures(data.load_splits(path), tmp_path / "figs")
    assert len(written) >= 2
    for p in written:
        assert_figure(p)
    test_csv = write_kaggle_csv(tmp_path / "test.csv", digits["test"].x[:100], None)
    unlabelled = plots.data_figures(data.load_splits(test_csv), tmp_path / "figs2")
    assert len(unlabelled) >= 2


def test_error_grid_shows_each_misread_digit(tmp_path, digits):
    x, y = digits["test"].x[:60], digits["test"].y[:60]
    probabilities = np.eye(10)[y] * 0.9 + 0.01
    few, many = probabilities.copy(), probabilities.copy()
    few[:5] = np.roll(few[:5], 1, axis=1)  # five digits read wrong
    many[:40] = np.roll(many[:40], 1, axis=1)  # forty: four rows of ten
    with Image.open(plots.errors(x, y, few, tmp_path / "few.png")) as a, \
            Image.open(plots.errors(x, y, many, tmp_path / "many.png")) as b:
        assert b.size[1] > 2.5 * a.size[1]


def test_curves_from_epoch_metrics(tmp_path):
    from digitrec.inference.runs import EpochMetrics

    history = [EpochMetrics(e, 1 / e, 1 - 0.1 / e, 1.1 / e, 1 - 0.2 / e, 1.0, 0.01) for e in range(1, 6)]
    assert_figure(plots.curves(history, tmp_path / "curves.png"))
