"""digitrec: handwritten digit recognition on a plain CPU."""

from digitrec.errors import DigitrecError

__version__ = "0.1.0"


def load_model(path=None):
    """Load a run folder (or the bundled model when `path` is None) as a `Predictor`."""
    from digitrec.predict import Predictor

    return Predictor.load(path)


__all__ = ["DigitrecError", "__version__", "load_model"]
