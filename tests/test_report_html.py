"""The reports' shared page: the title is text, Plotly's script comes once."""

from __future__ import annotations

import plotly.graph_objects as go

from nasfcn.report_html import PAGE_END, FigureWriter, page_start


def test_the_title_is_escaped_in_the_head_and_the_heading() -> None:
    page = page_start("Table <script>alert(1)</script>")
    assert "<script>" not in page
    assert page.count("Table &lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert page.startswith("<!doctype html>")
    assert page.endswith("</h1>")
    assert PAGE_END == "</body></html>"


def test_plotly_is_inlined_with_the_first_figure_only() -> None:
    figure_html = FigureWriter()
    first, second = (figure_html(go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))) for _ in range(2))
    assert "plotly.js v" in first
    assert "plotly.js v" not in second
    assert "Plotly.newPlot" in second
