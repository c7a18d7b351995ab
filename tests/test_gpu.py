"""NVML readings degrade field by field, never break."""
from __future__ import annotations

from kronos_train.control import events as E
from kronos_train.control.gpu import GpuMonitor, gpu_count

from fake_nvml import FakeGpu, FakeNvml


def test_several_gpus_read_in_full():
    snap = GpuMonitor(FakeNvml()).sample()
    assert snap.available and snap.count == 2 and snap.reason == ""
    g = snap.gpus[0]
    assert (g.name, g.util, g.mem_used_mb, g.mem_total_mb, g.temp_c, g.power_w) == \
        ("NVIDIA H100 80GB HBM3", 97.0, 40960.0, 81920.0, 61.0, 350.0)
    record = E.make_record("gpu", host=snap.host, gpus=[x.to_event() for x in snap.gpus])
    assert E.validate_record(record) == []


def test_unsupported_fields_become_none():
    nvml = FakeNvml([FakeGpu(name="GeForce", util=None, temp=None, power_mw=None)])
    g = GpuMonitor(nvml).sample().gpus[0]
    assert g.util is None and g.temp_c is None and g.power_w is None and g.mem_used_mb == 40960.0


def test_a_lost_gpu_is_reported_not_fatal():
    nvml = FakeNvml([FakeGpu(), FakeGpu(lost=True), FakeGpu()])
    snap = GpuMonitor(nvml).sample()
    assert [g.index for g in snap.gpus] == [0, 2] and "GPU 1 stopped answering" in snap.reason


def test_no_nvml_library_gives_a_reason():
    count, reason = gpu_count(FakeNvml(missing_library=True))
    assert count == 0 and reason.startswith("no NVIDIA GPU")


def test_real_pynvml_on_this_machine_never_raises():
    monitor = GpuMonitor()
    snap = monitor.sample()
    assert snap.count == 0 or snap.available
    monitor.close()
