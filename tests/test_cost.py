import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfcn import cost
from nasfcn.cost import CostReport, count_flops, count_params, format_count, measure, time_latency

FAST = {"repeats": 3, "warmup": 1}


class Interpolate(nn.Module):
    def __init__(self, size: tuple[int, int], mode: str) -> None:
        super().__init__()
        self.size, self.mode = size, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode=self.mode)


class TinyFCN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
        )
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.encoder(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_conv_flops_are_two_per_multiply_add():
    report = measure(nn.Conv2d(3, 8, 3, padding=1), (10, 10), **FAST)
    assert report.flops == 2 * 3 * 8 * 9 * 100 == 43200
    assert report.flops_by_op == (("aten.convolution", 43200),)


def test_grouped_dilated_strided_conv_flops():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4)
    # (16 + 2*2 - 2*(3-1) - 1) // 2 + 1 = 8 -> 8x8 output; each output sees 8/4 input channels.
    macs = 8 * 8 * 16 * (8 // 4) * 9
    assert measure(conv, (16, 16), **FAST).flops == 2 * macs == 36864


def test_transposed_conv_flops_count_input_positions():
    deconv = nn.ConvTranspose2d(4, 4, kernel_size=4, stride=2, padding=1)
    assert deconv(torch.zeros(1, 4, 5, 5)).shape[-2:] == (10, 10)
    report = measure(deconv, (5, 5), in_channels=4, **FAST)
    assert report.flops == 2 * (4 * 25 * 4 * 16) == 12800


@pytest.mark.parametrize(
    ("mode", "flops_per_output_element"), [("bilinear", 8), ("bicubic", 32), ("nearest", 0)]
)
def test_interpolation_flops_per_output_element(mode, flops_per_output_element):
    report = measure(Interpolate((10, 10), mode), (5, 5), in_channels=2, **FAST)
    assert report.flops == flops_per_output_element * 2 * 100
    assert report.params == 0


def test_bilinear_counted_when_called_inside_inference_mode():
    with torch.inference_mode():
        report = measure(Interpolate((10, 10), "bilinear"), (5, 5), in_channels=2, **FAST)
    assert report.flops == 1600


def test_whole_net_flops_are_sum_of_layers():
    report = measure(TinyFCN(), (16, 16), **FAST)
    expected = {
        "aten.convolution": 2 * (256 * 8 * 3 * 9 + 64 * 16 * 8 * 9 + 64 * 4 * 16),
        "aten.upsample_bilinear2d": 8 * 4 * 256,
    }
    assert dict(report.flops_by_op) == expected
    assert report.flops == sum(expected.values())


@pytest.mark.parametrize("batch_size", [2, 3])
def test_flops_scale_linearly_with_batch(batch_size):
    single = measure(TinyFCN(), (16, 16), **FAST)
    batched = measure(TinyFCN(), (16, 16), batch_size=batch_size, **FAST)
    assert batched.flops == batch_size * single.flops
    assert batched.input_shape == (batch_size, 3, 16, 16)
    assert batched.batch_size == batch_size


def test_params_count_trainable_and_frozen():
    model = TinyFCN()
    model.head.requires_grad_(False)
    expected = (3 * 8 * 9 + 8) + (8 + 8) + (8 * 16 * 9 + 16) + (16 * 4 + 4)
    assert count_params(model) == expected
    assert measure(model, (8, 8), **FAST).params == expected


def test_shared_parameters_counted_once():
    conv = nn.Conv2d(3, 3, 3, padding=1)
    assert count_params(nn.Sequential(conv, conv)) == count_params(conv) == 3 * 3 * 9 + 3


def test_latency_is_positive_and_finite():
    report = measure(TinyFCN(), (32, 32), repeats=5, warmup=1)
    assert 0 < report.latency_ms <= report.latency_p90_ms
    assert math.isfinite(report.latency_p90_ms)
    assert report.repeats == 5


def test_flops_and_latency_alone_are_what_measure_reports():
    model = TinyFCN().train()
    flags = [m.training for m in model.modules()]
    assert count_flops(model, (32, 32)) == measure(model, (32, 32), **FAST).flops
    assert count_flops(model, (32, 32), batch_size=2) == 2 * count_flops(model, (32, 32))
    assert 0 < time_latency(model, (32, 32), repeats=3, warmup=1) < math.inf
    assert [m.training for m in model.modules()] == flags
    with pytest.raises(ValueError, match="repeats"):
        time_latency(model, (32, 32), repeats=0)


def test_cpu_peak_memory_is_measured_and_grows_with_input():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    small = measure(conv, (32, 32), **FAST)
    large = measure(conv, (128, 128), **FAST)
    assert small.memory_kind == large.memory_kind == "cpu-profiler"
    weights_input_output = 4 * ((3 * 8 * 9 + 8) + 3 * 128 * 128 + 8 * 128 * 128)
    assert large.peak_memory_mb * 2**20 >= weights_input_output
    assert 0 < small.peak_memory_mb < large.peak_memory_mb


def test_cpu_memory_falls_back_to_estimate(monkeypatch):
    monkeypatch.setattr(cost, "_cpu_profiler_peak_rise", lambda model, x: None)
    report = measure(nn.Conv2d(3, 8, 3, padding=1), (16, 16), **FAST)
    assert report.memory_kind == "cpu-estimate"
    expected_bytes = 4 * ((3 * 8 * 9 + 8) + 3 * 256 + 8 * 256)
    assert report.peak_memory_mb * 2**20 == expected_bytes


def test_training_flags_device_and_global_rng_restored():
    model = TinyFCN().train()
    model.encoder[1].eval()  # mixed flags must come back exactly
    flags = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    measure(model, (16, 16), **FAST)
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(torch.get_rng_state(), rng)
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_report_is_frozen_and_json_safe():
    report = measure(TinyFCN(), (16, 16), **FAST)
    with pytest.raises(AttributeError):
        report.flops = 0  # type: ignore[misc]
    data = json.loads(json.dumps(report.as_dict()))
    assert data["flops"] == report.flops
    assert data["input_shape"] == [1, 3, 16, 16]
    assert data["device"] == "cpu"
    assert set(data) == set(CostReport.__dataclass_fields__)


def test_in_channels_required_without_conv():
    with pytest.raises(ValueError, match="in_channels"):
        measure(Interpolate((4, 4), "bilinear"), (2, 2))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"repeats": 0}, "repeats"), ({"batch_size": 0}, "batch_size"), ({"warmup": -1}, "warmup")],
)
def test_invalid_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        measure(TinyFCN(), (8, 8), **kwargs)


def test_measuring_cost_does_not_import_dynamo():
    """FlopCounterMode would import torch._dynamo (~1.4 s) in every fresh search worker."""
    code = (
        "import sys, torch\n"
        "from nasfcn.cost import measure\n"
        "from torch import nn\n"
        "model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2, mode='bilinear'))\n"
        "assert measure(model, (16, 16), repeats=1, warmup=0).flops > 0\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1234, "1.23K"),
        (1_234_567, "1.23M"),
        (4.5e9, "4.5G"),
        (999_600, "1M"),
        (-2500, "-2.5K"),
    ],
)
def test_format_count(n, text):
    assert format_count(n) == text


@pytest.mark.gpu
def test_measure_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = TinyFCN()
    cpu_flops = measure(model, (64, 64), **FAST).flops
    report = measure(model, (64, 64), device="cuda", **FAST)
    assert report.device.startswith("cuda:")
    assert report.memory_kind == "cuda-allocator"
    assert report.flops == cpu_flops
    assert report.latency_ms > 0
    assert report.peak_memory_mb * 2**20 >= 4 * 4 * 64 * 64  # at least the output
    assert {p.device.type for p in model.parameters()} == {"cpu"}
