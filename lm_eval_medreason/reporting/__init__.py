"""From lm-eval's logs to the study's tables and figures: reading the logs (``logs``), statistics, Table 1 and
comparisons (``report``), figures and the grader audit."""
