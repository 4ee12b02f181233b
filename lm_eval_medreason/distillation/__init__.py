"""Distilling reasoning traces from a teacher model: the pipeline, the teacher clients (live, helper processes, Batch
API), selection with the contamination guard, the trace store and the dry-run estimate."""
