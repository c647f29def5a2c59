"""Hardware cost of a model: parameters, FLOPs, latency and peak memory.

`measure` runs the model on random input of one shape and returns a `CostReport`.

FLOPs (one forward at ``batch_size``; one multiply-add = 2 FLOPs):

- Convolutions, transposed convolutions (per input position, so stride and padding
  are handled), linear layers, matmuls and attention are counted with the formulas of
  ``torch.utils.flop_counter`` (the ones ``FlopCounterMode`` uses): 2 x MACs, bias
  additions excluded. A small dispatch mode of ours applies them: FlopCounterMode's
  imports ``torch._dynamo`` at its first op (~1.4 s, once in every search worker) to
  guard against compiling, and nothing is compiled while counting.
- Interpolation, added here: bilinear = 4 multiply-adds = 8 FLOPs per output
  element, bicubic = 16 multiply-adds = 32 FLOPs per output element, nearest = 0.
- Not counted: pooling, normalization, activations, softmax and elementwise
  arithmetic (skip additions, attention gating, concatenation). They are
  memory-bound and a small fraction of the convolution FLOPs in these nets; the
  usual conventions leave them out, and their cost shows in latency and memory.

The count runs under ``torch.no_grad`` rather than ``torch.inference_mode``: in
inference mode ``F.interpolate`` decomposes into index/arith ops and would be missed.

Peak memory (``peak_memory_mb``, MiB = 2**20 bytes) is what one inference forward
needs resident: parameter + buffer bytes + input bytes + the allocator's peak rise
over its level just before the forward (activations, outputs and workspaces).
``memory_kind`` says where the rise came from:

- ``"cuda-allocator"``: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats`` (includes cuDNN workspaces; not the caching
  allocator's reserved pool).
- ``"cpu-profiler"``: the running sum of the CPU allocator events recorded by
  ``torch.autograd.profiler.profile(profile_memory=True)``, in time order.
- ``"cpu-estimate"``: fallback when the profiler records no memory events: the sum
  of every leaf module's output bytes, as if all were alive at once (an upper bound
  for the activations; misses workspaces).

Latency is the median (and 90th percentile) wall time of ``repeats`` forwards after
``warmup`` untimed ones, in eval mode under ``torch.inference_mode``, with CUDA
synchronised around each run. The model is moved to ``device`` for the measurement
and moved back afterwards when all its tensors lived on one device; every module's
training flag is restored. Input is ``randn`` from a private generator, so the
global RNG is untouched.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, shape_wrapper

__all__ = [
    "CostReport",
    "count_flops",
    "count_params",
    "device_name",
    "format_count",
    "measure",
    "time_latency",
]

_MIB = float(2**20)
_aten = torch.ops.aten


@dataclass(frozen=True)
class CostReport:
    """Cost of one model at one input shape on one device."""

    params: int  # all parameters, trainable or not (buffers excluded)
    flops: int  # one forward at batch_size; see the module docstring for the convention
    latency_ms: float  # median over `repeats` timed forwards
    latency_p90_ms: float  # 90th percentile of the same runs
    peak_memory_mb: float  # MiB; weights + input + peak rise during one forward
    memory_kind: str  # "cuda-allocator" | "cpu-profiler" | "cpu-estimate"
    device: str  # "cpu" or e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"
    cpu_threads: int  # torch.get_num_threads() during the run
    input_shape: tuple[int, int, int, int]  # (batch, channels, height, width)
    batch_size: int
    repeats: int
    flops_by_op: tuple[tuple[str, int], ...]  # (aten op, FLOPs), largest first

    def as_dict(self) -> dict[str, object]:
        """JSON-safe dict (tuples become lists, the breakdown a dict)."""
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        out["flops_by_op"] = dict(self.flops_by_op)
        return out


def count_params(model: nn.Module) -> int:
    """Number of parameters, trainable or not; shared parameters counted once."""
    return sum(p.numel() for p in model.parameters())


_UNITS = ("", "K", "M", "G", "T", "P")


def format_count(n: float) -> str:
    """Short count for tables, 3 significant digits: 1234567 -> "1.23M", 4.5e9 -> "4.5G"."""
    value, unit = abs(float(n)), 0
    while value >= 999.5 and unit < len(_UNITS) - 1:  # 999.5 would print as "1e+03"
        value /= 1000
        unit += 1
    return f"{'-' if n < 0 else ''}{value:.3g}{_UNITS[unit]}"


def _per_output_element(flops_per_element: int) -> Callable[..., int]:
    def formula(*args: object, out_shape: list[int] | None = None, **kwargs: object) -> int:
        return flops_per_element * math.prod(out_shape or ())

    return formula


_INTERPOLATION_FLOPS = {
    _aten.upsample_bilinear2d: _per_output_element(8),
    _aten.upsample_bicubic2d: _per_output_element(32),
    _aten.upsample_nearest2d: _per_output_element(0),
}


def _first_conv_in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels > 0:
            return module.in_channels
    raise ValueError(
        f"cannot infer in_channels: {type(model).__name__} has no nn.Conv2d; pass in_channels explicitly"
    )


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _tensor_bytes(model: nn.Module) -> int:
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _home_device(model: nn.Module) -> torch.device | None:
    """The one device all of the model's tensors live on, or None if zero or several."""
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    return devices.pop() if len(devices) == 1 else None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _resolved(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def device_name(device: str | torch.device) -> str:
    """The name `measure` gives ``device`` in its report, without measuring: a figure measured
    elsewhere is recognised by it."""
    return _device_name(_resolved(device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _on_device_in_eval(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode on `device` inside; training flags and (single) home device restored."""
    flags = [(m, m.training) for m in model.modules()]
    home = _home_device(model)
    model.to(device)
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training
        if home is not None and home != device:
            model.to(home)


class _FlopCount(TorchDispatchMode):
    """Adds up ``formulas`` (aten overload packet -> FLOPs) over every op run inside it."""

    def __init__(self, formulas: dict[object, Callable[..., int]]) -> None:
        super().__init__()
        self.formulas = formulas
        self.counts: dict[object, int] = {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # keeps TorchDispatchMode from importing torch._dynamo at the first op

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        formula = self.formulas.get(packet)
        if formula is None and func is not torch.ops.prim.device.default:
            with self:  # as FlopCounterMode: an op without a formula may decompose into counted ones
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if formula is not None:
            self.counts[packet] = self.counts.get(packet, 0) + formula(*args, **kwargs, out_val=out)
        return out


_FLOP_FORMULAS = {
    **flop_registry,
    **{op: shape_wrapper(formula) for op, formula in _INTERPOLATION_FLOPS.items()},
}


def _count_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    with torch.inference_mode(False), torch.no_grad(), _FlopCount(_FLOP_FORMULAS) as counter:
        model(x)
    by_op = {str(op): n for op, n in counter.counts.items() if n}
    return sum(by_op.values()), by_op


def _cuda_peak_rise(model: nn.Module, x: torch.Tensor) -> int:
    device = x.device
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        out = model(x)
        _sync(device)
    del out
    return torch.cuda.max_memory_allocated(device) - before


def _cpu_profiler_peak_rise(model: nn.Module, x: torch.Tensor) -> int | None:
    """Running peak of CPU allocator events during one forward; None if none were recorded."""
    # Kineto prints "USDT ... profiler_start/stop" lines to stderr at every profile
    # unless its log level is raised before its lazy first use; respect a user's choice.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    # torch.autograd.profiler.profile, not torch.profiler.profile: the latter imports
    # torch._inductor on first use (~1.5 s) for a cudagraphs flag we do not need.
    with torch.inference_mode(), torch.autograd.profiler.profile(profile_memory=True) as prof:
        out = model(x)
        del out
    results = getattr(prof, "kineto_results", None)
    events = [
        e
        for e in (results.events() if results is not None else ())
        if e.name() == "[memory]" and e.device_type().name == "CPU"
    ]
    if not events:
        return None
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def _leaf_output_bytes(model: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(module: nn.Module, args: object, output: object) -> None:
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _checked_shape(
    model: nn.Module, input_hw: tuple[int, int], batch_size: int, in_channels: int | None
) -> tuple[int, int, int, int]:
    height, width = (int(v) for v in input_hw)
    for name, value in (("input_hw[0]", height), ("input_hw[1]", width), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"measure: {name} must be >= 1, got {value!r}")
    channels = _first_conv_in_channels(model) if in_channels is None else in_channels
    return (batch_size, channels, height, width)


def _random_input(model: nn.Module, shape: tuple[int, int, int, int], device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode(False):  # an inference tensor would defeat the FLOP count
        return torch.randn(shape, generator=generator, dtype=_model_dtype(model)).to(device)


def _forward_times_ms(model: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    """Wall times of ``repeats`` forwards after ``warmup`` untimed ones, synchronised around each."""
    device = x.device
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        _sync(device)
    times_ms = []
    with torch.inference_mode():
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            times_ms.append((time.perf_counter() - start) * 1e3)
    return times_ms


def count_flops(
    model: nn.Module, input_hw: tuple[int, int], batch_size: int = 1, in_channels: int | None = None
) -> int:
    """FLOPs of one forward at ``input_hw`` (the convention of the module docstring), on the CPU,
    without timing anything: what `measure` reports as ``flops``."""
    shape = _checked_shape(model, input_hw, batch_size, in_channels)
    dev = torch.device("cpu")
    with _on_device_in_eval(model, dev):
        flops, _ = _count_flops(model, _random_input(model, shape, dev))
    return int(flops)


def time_latency(
    model: nn.Module,
    input_hw: tuple[int, int],
    device: str | torch.device = "cpu",
    repeats: int = 20,
    warmup: int = 3,
    in_channels: int | None = None,
) -> float:
    """Median milliseconds of one forward at batch 1, timed as `measure` times it (its ``latency_ms``)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"time_latency: repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    dev = _resolved(device)
    shape = _checked_shape(model, input_hw, 1, in_channels)
    with _on_device_in_eval(model, dev):
        return float(np.median(_forward_times_ms(model, _random_input(model, shape, dev), repeats, warmup)))


def measure(
    model: nn.Module,
    input_hw: tuple[int, int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    in_channels: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
) -> CostReport:
    """Measure params, FLOPs, latency and peak memory of `model` on one input shape.

    `in_channels` defaults to that of the first `nn.Conv2d` in `model.modules()`.
    Conventions are in the module docstring.
    """
    for name, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if value < low:
            raise ValueError(f"measure: {name} must be >= {low}, got {value!r}")
    shape = _checked_shape(model, input_hw, batch_size, in_channels)
    dev = _resolved(device)
    x = _random_input(model, shape, dev)

    with _on_device_in_eval(model, dev):
        resident = _tensor_bytes(model) + x.numel() * x.element_size()
        flops, by_op = _count_flops(model, x)  # also the first warm-up run

        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            _sync(dev)

        if dev.type == "cuda":
            rise, memory_kind = _cuda_peak_rise(model, x), "cuda-allocator"
        else:
            profiled = _cpu_profiler_peak_rise(model, x)
            if profiled is not None:
                rise, memory_kind = profiled, "cpu-profiler"
            else:
                rise, memory_kind = _leaf_output_bytes(model, x), "cpu-estimate"

        times_ms = _forward_times_ms(model, x, repeats, warmup=0)

    return CostReport(
        params=count_params(model),
        flops=int(flops),
        latency_ms=float(np.median(times_ms)),
        latency_p90_ms=float(np.percentile(times_ms, 90)),
        peak_memory_mb=(resident + max(rise, 0)) / _MIB,
        memory_kind=memory_kind,
        device=_device_name(dev),
        cpu_threads=torch.get_num_threads(),
        input_shape=shape,
        batch_size=batch_size,
        repeats=repeats,
        flops_by_op=tuple(sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
