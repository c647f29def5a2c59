"""The Plotly leaderboard: compare a search's candidates as one HTML file or a live web view.

It reads the database only through ``nasfcn.store``'s query functions (pandas frames):
``data`` loads one search, ``figures`` draws it (pure frame -> figure functions), ``table``
lays out the ranked table, ``static`` writes the self-contained HTML file, and ``app`` (Dash,
imported on demand: ``from leaderboard.app import create_app``) serves it live.
"""

from leaderboard.data import Board, board_message, export_command, filter_trials, load_board
from leaderboard.static import render, write_leaderboard

__all__ = [
    "Board",
    "board_message",
    "export_command",
    "filter_trials",
    "load_board",
    "render",
    "write_leaderboard",
]
