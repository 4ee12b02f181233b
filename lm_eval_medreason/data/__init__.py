"""Benchmark data: every benchmark and strategy, one row each (``registry``), where each file comes from,
pinned (``sources``), and how it becomes validated cases (``loaders``)."""
