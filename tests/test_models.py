import pytest
import torch

from digitrec.models import architectures
from digitrec.models.tensors import to_input


def test_registry_builds_every_model_with_ten_outputs():
    x = torch.rand(3, 1, 28, 28)
    for name in architectures.list_models():
        assert architectures.create_model(name).eval()(x).shape == (3, 10)
    with pytest.raises(Exception, match="unknown architecture"):
        architectures.create_model("resnet-1000")


def test_shift_average_reads_the_digit_and_its_four_one_pixel_shifts(tiny_digits):
    torch.manual_seed(0)
    net = architectures.create_model("cnn").eval()
    x = to_input(tiny_digits.x[:8])
    assert x[..., :2, :].sum() == 0 and x[..., :, :2].sum() == 0  # MNIST's empty border: shifting loses no ink
    views = [x] + [x.roll(step, dim) for dim in (2, 3) for step in (1, -1)]
    with torch.no_grad():
        expected = torch.stack([net(v).softmax(1) for v in views]).mean(0)
        got = architectures.ShiftAverage(net, 1)(x).exp()
        assert torch.allclose(got, expected, atol=1e-5)
        assert not torch.allclose(got, net(x).softmax(1), atol=1e-3)
    assert architectures.with_test_time_shifts(net, 0) is net


def test_named_variants_are_keyword_arguments_of_one_architecture():
    wide, custom = architectures.create_model("cnn-wide"), architectures.create_model("cnn", widths=(24, 48, 96))
    assert [p.shape for p in wide.parameters()] == [p.shape for p in custom.parameters()]
    narrow = architectures.create_model("cnn", widths=(8, 8, 8))
    assert architectures.count_parameters(narrow) < architectures.count_parameters(wide)
    assert {"cnn", "cnn-wide", "cnn-wider", "mlp", "keras-cnn"} <= set(architectures.list_models())


def test_multiply_adds_are_counted_and_the_bundled_network_keeps_its_size_class():
    assert architectures.count_multiply_adds(architectures.create_model("mlp")) == 784 * 128 + 128 * 128 + 128 * 10
    # cnn-wide: the 5x5 stem to 12x12, 3x3 at 12x12, 3x3 at 6x6, the linear layer
    wide = 144 * 24 * 25 + 144 * 48 * 24 * 9 + 36 * 96 * 48 * 9 + 96 * 10
    assert architectures.count_multiply_adds(architectures.create_model("cnn-wide")) == wide
    assert architectures.count_multiply_adds(architectures.create_model("cnn-wider")) <= 4_000_000
    from digitrec.inference import runs

    model, _ = runs.load_run(None)
    assert architectures.count_multiply_adds(model) <= 4_000_000  # the size class: one read, at most 4 M
