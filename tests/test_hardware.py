from digitrec.core import hardware


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
