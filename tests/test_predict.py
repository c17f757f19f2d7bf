import numpy as np
import pytest
from PIL import Image

from digitrec import DigitrecError, load_model, synthetic


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_python_api_takes_arrays_pil_images_and_paths(model, mnist, tmp_path):
    x, y = mnist["test"].x[:200], mnist["test"].y[:200]
    assert (model.predict(x) == y).mean() >= 0.99
    assert model.predict(x[0]).tolist() == [y[0]]
    probabilities = model.predict_proba(x[:5])
    assert probabilities.shape == (5, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)

    images, labels = synthetic.drawn_digits(10, seed=3)
    assert model.predict(images).tolist() == labels.tolist()
    path = tmp_path / "four.png"
    images[4].save(path)
    assert model.predict(path).tolist() == [4]
    assert model.predict(str(path)).tolist() == [4]
    big = np.asarray(images[7])  # a 280x280 picture array goes through preprocessing too
    assert model.predict(big).tolist() == [7]


def test_blank_picture_is_refused(model):
    with pytest.raises(DigitrecError, match="blank"):
        model.predict(Image.new("L", (64, 64), 255))


def test_missing_run_folder(tmp_path):
    with pytest.raises(DigitrecError, match="no such run folder"):
        load_model(tmp_path / "nothing")
