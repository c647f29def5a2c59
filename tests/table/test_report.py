"""The report's statistics agree with a direct computation on the fixture's known numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nasfcn.table import load, render_html, table_report


def test_icc_agrees_with_a_direct_anova_of_the_known_table(known, table_file: Path, arch_index) -> None:
    report = table_report(load(table_file))
    # final mIoU: architecture a, seed s -> 0.4 + 0.05 a + 0.01 s; the failed run has none
    groups = [
        [known.miou(a, s, known.EPOCHS) for s in range(known.SEEDS) if (a, s) != known.FAILED]
        for a in range(8)
    ]
    values = np.concatenate(groups)
    n, sizes = len(values), np.array([len(g) for g in groups])
    msb = sum(len(g) * (np.mean(g) - values.mean()) ** 2 for g in groups) / 7
    msw = sum(((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups) / (n - 8)
    k0 = (n - (sizes**2).sum() / n) / 7
    assert report.icc.icc == pytest.approx((msb - msw) / (msb + (k0 - 1) * msw))
    assert report.icc.ci_low < report.icc.icc < report.icc.ci_high
    assert report.failed_runs == 1


def test_effects_fidelity_and_front_agree_with_the_known_table(known, table_file: Path, arch_index) -> None:
    report = table_report(load(table_file))
    index = {arch_index(a): a for a in range(8)}
    means = dict(zip(report.archs, report.means, strict=True))
    skip = next(e for e in report.effects if e.knob == "skip")
    with_skip = [means[arch_index(a)] for a in range(8) if known.genotypes[a].skip == "fcn8s"]
    assert skip.levels["fcn8s"].mean == pytest.approx(np.mean(with_skip))
    assert skip.levels["fcn8s"].n == 4
    assert len(skip.pairs) == 1
    knobs = {e.knob for e in report.effects}
    assert knobs == {"skip", "upsample", "attention.type"}  # attention.where only mirrors the type
    # every architecture gains 0.1 per epoch: epoch 1 ranks them as the final epoch does
    assert report.fidelity == pytest.approx((1.0, 1.0))
    front = {index[arch] for arch, on in zip(report.archs, report.pareto, strict=True) if on}
    assert front == {6, 7}  # the best mIoU (7) and the best of the fastest ones (0, 3, 6)


def test_the_html_report_is_one_file_with_escaped_text(table_file: Path) -> None:
    table = load(table_file)
    table.facts["name"] = "<script>alert(1)</script>"
    html = render_html(table_report(table), table)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("plotly.js v") == 1  # Plotly's JavaScript inlined once, no network
    for heading in ("Distribution", "intra-class correlation", "main effect", "Fidelity", "Pareto"):
        assert heading.lower() in html.lower()
    assert not math.isnan(table_report(table).icc.icc)
