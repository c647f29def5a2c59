"""Tabular benchmarks: a finished ``nasfcn tabulate`` as one Parquet file, read back as a ``Table``.

``export_table(store, name, path)`` writes the file (its format: ``_format``);
``load(path, space=None)`` reads and checks it; ``table_report`` computes what
``nasfcn tabulate report`` shows and ``render_html`` draws it; ``compare_tables`` says how alike two
tables of one space rank its architectures. Imports neither torch nor Ray.
"""

from nasfcn.table._compare import RankAgreement, compare_tables
from nasfcn.table._errors import TableError, TableLookupError
from nasfcn.table._export import export_table, table_from_store
from nasfcn.table._format import FORMAT_VERSION, METADATA_KEY, METRICS
from nasfcn.table._report import TableReport, architecture_knobs, render_html, table_report
from nasfcn.table._table import Cost, Table, load

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "METRICS",
    "Cost",
    "RankAgreement",
    "Table",
    "TableError",
    "TableLookupError",
    "TableReport",
    "architecture_knobs",
    "compare_tables",
    "export_table",
    "load",
    "render_html",
    "table_from_store",
    "table_report",
]
