"""Leaderboards: board specs, committed results records, and the tables built from them."""
