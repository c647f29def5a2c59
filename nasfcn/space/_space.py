"""The space: a validated ``SearchSpace`` and its define-by-run ``suggest``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from nasfcn import catalogue
from nasfcn.catalogue import needs_pool_indices
from nasfcn.genotype import AttentionGene, EncoderGene, Genotype, HeadGene, TrainGene
from nasfcn.space._catalog import ENUMERATION_LIMIT, INTRINSIC_CONDITIONS
from nasfcn.space._counting import _count
from nasfcn.space._knobs import Knob, TrialLike
from nasfcn.space._trials import RandomTrial, _GenotypeTrial, _NotInSpaceError, _odometer


@dataclass(frozen=True)
class SearchSpace:
    """A validated space of FCN architectures (and optional training knobs)."""

    name: str
    knobs: Mapping[str, Knob]
    order: tuple[str, ...]  # suggestion order (dependencies first)
    in_channels: int = 3
    min_size: int = 32
    description: str = ""
    source: str = "<memory>"
    text: str = field(default="", repr=False)  # the YAML as written, for the database

    # -- define-by-run -----------------------------------------------------------------
    def suggest(self, trial: TrialLike) -> Genotype:
        """Draw one genotype; inactive knobs are never suggested."""
        return self._genotype(self._draw(trial))

    def _draw(self, trial: TrialLike, include_train: bool = True) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for path in self.order:
            knob = self.knobs[path]
            if not self.is_active(path, values) or (knob.definition.train and not include_train):
                values[path] = knob.definition.default
            elif path == "encoder.downsample" and needs_pool_indices(values["upsample"]):
                # max-unpooling needs the pooling indices
                values[path] = catalogue.index_keeping_downsampling()[0]
            elif knob.per_stage:
                values[path] = tuple(
                    knob.draw(trial, f"{knob.param}/{i}") for i in range(values["encoder.stages"])
                )
            else:
                values[path] = knob.draw(trial, knob.param)
        return values

    def is_active(self, path: str, values: Mapping[str, Any]) -> bool:
        intrinsic = INTRINSIC_CONDITIONS.get(path)
        if intrinsic is not None and not intrinsic(values):
            return False
        when = self.knobs[path].when
        return when is None or when.holds(values)

    def _genotype(self, v: Mapping[str, Any]) -> Genotype:
        train = {p.split(".", 1)[1]: v[p] for p, k in self.knobs.items() if k.definition.train}
        return Genotype(
            encoder=EncoderGene(
                stages=v["encoder.stages"],
                width=v["encoder.width"],
                max_width=v["encoder.max_width"],
                blocks_per_stage=v["encoder.blocks_per_stage"],
                kernel_size=v["encoder.kernel_size"],
                dilation=v["encoder.dilation"],
                downsample=v["encoder.downsample"],
                norm=v["encoder.norm"],
                activation=v["encoder.activation"],
            ),
            skip=v["skip"],
            upsample=v["upsample"],
            attention=AttentionGene(type=v["attention.type"], where=v["attention.where"]),
            head=HeadGene(
                kernel_size=v["head.kernel_size"],
                extra_conv=v["head.extra_conv"],
                extra_kernel_size=v["head.extra_kernel_size"],
            ),
            train=TrainGene(**train),
        )

    def sample(self, seed: int) -> Genotype:
        """A random genotype, the same for the same seed."""
        return self.suggest(RandomTrial(seed))

    def iter_genotypes(
        self, include_train: bool = True, limit: int = ENUMERATION_LIMIT
    ) -> Iterator[Genotype]:
        """Every distinct genotype of a finite space, in a fixed order.

        With ``include_train=False`` training knobs are left to the recipe, so this walks
        the distinct architectures. Raises ValueError on a continuous knob, or past
        ``limit`` distinct genotypes (so a space whose ``size()`` is within it never does).
        """
        seen: set[str] = set()
        draws = _odometer(lambda trial: self._draw(trial, include_train))
        for values in draws:
            genotype = self._genotype(values)
            if genotype.trial_key not in seen:
                if len(seen) >= limit:
                    raise ValueError(f"{self.name} has more than {limit} combinations to enumerate")
                seen.add(genotype.trial_key)
                yield genotype

    def params_for(
        self, genotype: Genotype, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The optimizer parameters that draw exactly ``genotype`` here, or None if none do.

        ``defaults`` gives training knobs the genotype leaves to the recipe (e.g. ``{"lr": 3e-3}``).
        This is how a design chosen outside the optimizer (a reference) is told to it.
        """
        trial = _GenotypeTrial(genotype.to_dict(), defaults or {})
        try:
            drawn = self.suggest(trial)
        except _NotInSpaceError:
            return None
        return trial.params if drawn.arch_json() == genotype.arch_json() else None

    # -- facts about the space ------------------------------------------------------------
    @property
    def searched(self) -> tuple[Knob, ...]:
        return tuple(self.knobs[p] for p in self.order if self.knobs[p].searched)

    def size(self, include_train: bool = False) -> float:
        """Number of distinct architectures (``math.inf`` when a float range is searched).

        Conditional knobs only count where they are active, and choices that build the
        same network (a width cap that never bites, dilation of a 1x1 kernel) count once.
        """
        return _count(self, include_train)
