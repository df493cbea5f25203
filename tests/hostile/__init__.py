"""Hostile input: stores, files, names, numbers and settings that break the rules."""
