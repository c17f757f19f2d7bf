import pytest

from digitrec.core import hardware, settings


def test_bf16_follows_the_cpu_flags_unless_forced(monkeypatch):
    monkeypatch.delenv("DIGITREC_BF16", raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not hardware.bf16_autocast_supported()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert hardware.bf16_autocast_supported()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert hardware.bf16_autocast_supported()
    monkeypatch.setenv("DIGITREC_BF16", "0")
    assert not hardware.bf16_autocast_supported()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset())
    monkeypatch.setenv("DIGITREC_BF16", "1")
    assert hardware.bf16_autocast_supported()


def test_threads_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("DIGITREC_THREADS", raising=False)
    assert hardware.thread_count() == hardware.available_cores() >= 1
    monkeypatch.setenv("DIGITREC_THREADS", "3")
    assert hardware.thread_count() == 3


def test_this_machine_is_described_from_what_it_reports():
    info = hardware.describe()
    assert info["cores"] == hardware.available_cores() and info["cpu"]
    assert info["bf16_autocast"] == hardware.bf16_autocast_supported()
    assert isinstance(hardware.cpu_flags(), frozenset)


# ---------------------------------------------------------------- DIGITREC_* settings (core/settings.py)


def test_a_bad_thread_count_is_one_line_naming_the_variable(monkeypatch, capsys):
    from digitrec.cli import main

    monkeypatch.setenv("DIGITREC_THREADS", "abc")
    assert main(["predict", "examples/drawn-7.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: DIGITREC_THREADS: 'abc' is not a whole number (expected "), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_threads_are_parsed_once_each_user_keeps_its_default(monkeypatch):
    from digitrec.cluster import sweeps
    from digitrec.core.errors import DigitrecError

    monkeypatch.delenv("DIGITREC_THREADS", raising=False)
    assert (hardware.thread_count(), sweeps.cpus_per_trial()) == (hardware.available_cores(), 1)
    monkeypatch.setenv("DIGITREC_THREADS", " 3 ")  # read when asked, not when the module was imported
    assert hardware.thread_count() == sweeps.cpus_per_trial() == 3
    monkeypatch.setenv("DIGITREC_THREADS", "0")
    assert (hardware.thread_count(), sweeps.cpus_per_trial()) == (hardware.available_cores(), 1)
    for bad in ("abc", "-2", "1.5"):
        monkeypatch.setenv("DIGITREC_THREADS", bad)
        for read in (hardware.thread_count, sweeps.cpus_per_trial):
            with pytest.raises(DigitrecError, match=f"DIGITREC_THREADS: '{bad}'"):
                read()


@pytest.mark.parametrize(("name", "value", "read"), [
    ("DIGITREC_BF16", "yes", hardware.bf16_autocast_supported),
    ("DIGITREC_DEVICE", "gpu", lambda: settings.device()),
    ("DIGITREC_BODY_SECONDS", "-1", lambda: settings.body_seconds()),
    ("DIGITREC_HEADER_SECONDS", "soon", lambda: settings.header_seconds()),
    ("DIGITREC_SERVE_COLLECT", "/tmp/x|many", lambda: settings.serve_collect()),
])
def test_a_bad_value_names_the_variable_and_what_was_expected(monkeypatch, name, value, read):
    from digitrec.core.errors import DigitrecError

    monkeypatch.setenv(name, value)
    with pytest.raises(DigitrecError) as caught:
        read()
    assert str(caught.value).startswith(f"{name}: '{value.split('|')[-1]}' ") and "(expected " in str(caught.value)


def test_settings_defaults_and_good_values(monkeypatch):
    for name in settings.NAMES:
        monkeypatch.delenv(name, raising=False)
    assert (settings.data_path(), settings.threads(), settings.bf16(), settings.device()) == (None, None, None, "")
    assert settings.body_seconds() == settings.header_seconds() == 10
    assert (settings.serve_model(), settings.serve_hosts(), settings.serve_collect()) == (None, (), (None, 0))
    monkeypatch.setenv("DIGITREC_DEVICE", "cuda:1")
    monkeypatch.setenv("DIGITREC_SERVE_COLLECT", "/tmp/x|5")
    monkeypatch.setenv("DIGITREC_SERVE_HOSTS", "a,b")
    assert (settings.device(), settings.serve_collect(), settings.serve_hosts()) == ("cuda:1", ("/tmp/x", 5),
                                                                                     ("a", "b"))


def test_every_cache_honours_xdg_cache_home(monkeypatch, tmp_path):
    import numpy as np

    from digitrec import data
    from digitrec.data import views

    monkeypatch.delenv("DIGITREC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "digitrec" / "mnist"
    monkeypatch.setattr(views, "render_views", lambda images, n, seed, kinds=None: np.zeros((n, *images.shape),
                                                                                          np.uint8))
    views.cached_views(np.zeros((2, 28, 28), np.uint8), 1, 0)
    assert [p.parent for p in (tmp_path / "xdg").rglob("views-*.npy")] == [tmp_path / "xdg" / "digitrec"]
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path / "own"))
    views.cached_views(np.zeros((2, 28, 28), np.uint8), 1, 0)
    assert len(list((tmp_path / "own").glob("views-*.npy"))) == 1


def test_only_settings_reads_digitrec_variables():
    import re
    from pathlib import Path

    src = Path(settings.__file__).parent.parent
    readers = re.compile(r"""(environ\.get|getenv|environ\[)\(?\s*["']DIGITREC_""")
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if p.name != "settings.py" and readers.search(p.read_text())]
    assert offenders == []
    named = set(re.findall(r"DIGITREC_[A-Z0-9_]+", "".join(p.read_text() for p in src.rglob("*.py"))))
    assert named <= set(settings.NAMES), named - set(settings.NAMES)


def test_a_thread_count_past_any_machine_is_refused_in_one_line(monkeypatch, capsys):
    """100,000 threads took 4.3 GB and hung `read`: a typing slip, not a machine."""
    from digitrec.cli import main

    monkeypatch.setenv("DIGITREC_THREADS", "99999999")
    assert main(["read", "docs/number-2026.jpg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error: DIGITREC_THREADS: '99999999' is too large (expected "), err
    assert err.count("\n") == 1
