"""Benchmark data: where each file comes from, pinned (``sources``), and how it becomes validated cases
(``loaders``)."""
