"""The plainest baselines: parameters, FLOPs and latency, measured as every trial's cost is.

Each is ``nasfcn.cost``'s own measurement (``count_params``, ``count_flops``,
``time_latency``), so a proxy's number equals the cost a search records for the same
network and input: FLOPs and latency of one image (batch 1) at the minibatch's size.
Larger counts as "predicted better" (more capacity), as the baselines are used in the
zero-cost proxy papers; the correlation's sign says which way a table goes.
"""

from __future__ import annotations

import torch
from torch import nn

from nasfcn.cost import count_flops, count_params, time_latency
from nasfcn.proxies._core import PROXIES, Batch

#: Timed forwards (after 3 untimed ones) behind ``latency``'s median; fewer than a trial's 20,
#: since a proxy should cost a fraction of a trial: the table's own cost keeps the 20.
LATENCY_REPEATS = 10


@PROXIES.register("params")
def params(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Number of parameters (``nasfcn.cost.count_params``)."""
    return float(count_params(model))


@PROXIES.register("flops")
def flops(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """FLOPs of one forward of one image at the batch's size (``nasfcn.cost.count_flops``)."""
    return float(count_flops(model, batch.image_size, in_channels=int(batch.images.shape[1])))


@PROXIES.register("latency")
def latency(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Median milliseconds of one forward of one image at the batch's size, on the batch's device
    (``nasfcn.cost.time_latency``): a measurement, so not the same number twice."""
    return time_latency(
        model,
        batch.image_size,
        device=batch.images.device,
        repeats=LATENCY_REPEATS,
        in_channels=int(batch.images.shape[1]),
    )
