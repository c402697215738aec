"""Runnable business workflows built on podium, on real data copied into this folder with attribution."""
