"""Fine-tuning a student on distilled traces: the launcher (``medreason train``), the per-process worker, recipes,
data checks and the adapter check."""
