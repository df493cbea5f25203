"""Tests of the core: figures, rules, catalog and command line, on real SQLite stores."""
