"""Evaluation under lm-eval: the task hooks (``hooks``), answer extraction (``answers``), voting, free-form grading
and the LLM judge, and the generator of the task YAML (``tasks``)."""
