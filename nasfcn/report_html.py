"""One self-contained HTML page for a report: the head, its style, and Plotly's JavaScript once.

The table report (``nasfcn tabulate report``) and the arena report (``nasfcn arena --html``)
are files a reader opens offline, so each carries Plotly's script inlined, once, with the
first figure; every title goes through ``html.escape``, since stored names are data.
"""

from __future__ import annotations

from html import escape
from typing import Any

#: The reports' shared style: readable width, plain tables, numbers right-aligned.
CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; color: #222; }
.muted { color: #555; }
section { margin: 2rem 0; }
table { border-collapse: collapse; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
"""
PAGE_END = "</body></html>"


def page_start(title: str) -> str:
    """The page up to and including its ``<h1>``: ``title`` escaped, the style inlined."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
    )


class FigureWriter:
    """Plotly figures as page fragments: the first carries Plotly's JavaScript, the rest reuse it."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, figure: Any) -> str:
        html: str = figure.to_html(
            full_html=False, include_plotlyjs=self._first, config={"displaylogo": False}
        )
        self._first = False
        return html
