"""Leaderboard (filled by a later issue)."""
