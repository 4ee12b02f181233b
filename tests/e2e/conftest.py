"""Session fixtures shared by the report tests (test_report.py, test_report_html.py): one set of real lm_eval runs."""

from pathlib import Path

import pytest

from tests.support.report_runs import make_runs, report


@pytest.fixture(scope="session")
def out(tmp_path_factory) -> Path:
    """OUT/alpha and OUT/beta from real lm_eval runs (see tests.support.report_runs.make_runs)."""
    return make_runs(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def reported(out, tmp_path_factory) -> tuple[Path, str]:
    rep = tmp_path_factory.mktemp("rep") / "report"
    return rep, report(out, "--output", rep).stdout
