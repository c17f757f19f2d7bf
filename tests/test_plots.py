import re

import numpy as np
import pytest
from conftest import write_kaggle_csv
from PIL import Image

from digitrec import data, models, plots
from digitrec.evaluate import evaluate, held_out
from digitrec.predict import Predictor
from digitrec.report import write_report
from digitrec.train import train_run


def assert_figure(path):
    assert path.exists(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.load()
        pixels = np.asarray(image.convert("L"))
    assert width >= 800 and 200 <= height <= 3000, (path, image.size)
    assert pixels.std() > 10, f"{path} looks empty"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, mnist_dir):
    """A 3-epoch mlp run on part of real MNIST."""
    import digitrec.data as data_module

    real = data_module.load_for_training
    patch = pytest.MonkeyPatch()
    patch.setattr(data_module, "load_for_training",
                  lambda *a: tuple(d.subset(np.arange(n)) for d, n in zip(real(*a), (3000, 1000), strict=True)))
    run_dir = tmp_path_factory.mktemp("runs") / "mlp3"
    try:
        train_run(models.get_recipe(arch="mlp").update(epochs=3), mnist_dir, run_dir)
    finally:
        patch.undo()
    return run_dir


def test_training_leaves_figures(small_run):
    pngs = sorted(p.name for p in small_run.glob("*.png"))
    assert {"curves.png", "confusion.png", "per_class.png", "errors.png", "samples.png"} <= set(pngs)
    for name in pngs:
        assert_figure(small_run / name)


def test_report_shows_every_figure_offline(small_run, mnist_dir):
    predictor = Predictor.load(small_run)
    digits, split = held_out(mnist_dir, predictor.config)
    assert split == "test"
    page = write_report(small_run, evaluate(predictor.probabilities(digits.x), digits), digits, split).read_text()
    pngs = sorted(small_run.glob("*.png"))
    assert len(pngs) >= 7  # five from training, two from the report
    for png in pngs:
        assert f'data-file="{png.name}"' in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(pngs)
    assert not re.search(r'(src|href)="https?://', page)  # opens with no network


def test_data_check_plots_for_a_kaggle_csv(tmp_path, mnist):
    path = write_kaggle_csv(tmp_path / "train.csv", mnist["train"].x[:300], mnist["train"].y[:300])
    written = plots.data_figures(data.load_splits(path), tmp_path / "figs")
    assert len(written) >= 2
    for p in written:
        assert_figure(p)
    test_csv = write_kaggle_csv(tmp_path / "test.csv", mnist["test"].x[:100], None)
    unlabelled = plots.data_figures(data.load_splits(test_csv), tmp_path / "figs2")
    assert len(unlabelled) >= 2
