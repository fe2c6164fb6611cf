"""Services: the sequences the edges (CLI, API, demo) run, written once.

- :mod:`.analysis`: ingest -> analyze -> summarise -> report, and the front door ``analyze``.
"""
