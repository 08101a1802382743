"""The base layer: imports nothing else of `scalinglaws` (a test enforces it).

    paths.py       where data, results and scratch live
    validation.py  ParameterError and the check_* helpers every entry point uses
    profiles.py    the profile registry: every per-profile number shared by the studies
    results.py     atomic writes, provenance, ResultStore
    sweep.py       resumable sweeps of units keyed by config hash
    threads.py     thread pinning for reproducible CPU runs
"""
