"""`medreason data validate`, run as a real process: counts on stdout, or exit 1 with one line on stderr."""

import hashlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.synthetic import medbullets_columns, medbullets_rows, medqa_rows, write_csv, write_jsonl


def medreason_command() -> list[str]:
    """The installed console script (beside this interpreter, else on PATH), else the module."""
    beside = Path(sys.executable).with_name("medreason")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("medreason")
    return [found] if found else [sys.executable, "-m", "lm_eval_medreason.cli"]


def validate(benchmark: str, path) -> subprocess.CompletedProcess:
    """Run `medreason data validate --benchmark BENCHMARK PATH` without any MEDREASON_* settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEDREASON_")}
    return subprocess.run(
        [*medreason_command(), "data", "validate", "--benchmark", benchmark, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def assert_failed_with_one_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1, nothing on stdout, exactly one stderr line containing every fragment, no traceback."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_good_medbullets_file(tmp_path):
    rows = medbullets_rows(7)
    path = write_csv(tmp_path / "medbullets_op5.csv", rows, medbullets_columns(5))
    result = validate("medbullets", path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert str(path) in result.stdout
    assert "cases:        7" in result.stdout and "5 per case" in result.stdout
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"sha256:       {sha} (differs from the pinned upstream medbullets_op5.csv, 7da4b139" in result.stdout
    gold = Counter(row["answer_idx"] for row in rows)
    for letter in "ABCDE":
        assert f"{letter} {gold[letter]} ({100 * gold[letter] / 7:.1f}%)" in result.stdout


def test_good_medqa_file_shows_steps(tmp_path):
    path = write_jsonl(tmp_path / "medqa.jsonl", medqa_rows(6))
    result = validate("medqa", path)
    assert result.returncode == 0, result.stderr
    assert "cases:        6" in result.stdout
    assert "steps:        step1 4 (66.7%), step2&3 2 (33.3%)" in result.stdout


def test_bad_row(tmp_path):
    rows = medbullets_rows(5)
    rows[3]["answer_idx"] = "F"
    path = write_csv(tmp_path / "medbullets_op5.csv", rows, medbullets_columns(5))
    assert_failed_with_one_line(
        validate("medbullets", path),
        f"medreason: error: {path} row 5 (line 14): answer_idx 'F' is not among the option letters A-E",
    )


def test_bad_jsonl_line(tmp_path):
    path = write_jsonl(tmp_path / "medqa.jsonl", medqa_rows(3))
    path.write_text(path.read_text() + '{"question": "truncated\n')
    assert_failed_with_one_line(validate("medqa", path), f"{path} line 4: malformed JSON")


def test_malformed_csv(tmp_path):
    path = write_csv(tmp_path / "medbullets_op5.csv", medbullets_rows(3), medbullets_columns(5))
    path.write_text(path.read_text(encoding="utf-8") + 'https://x,"A question with an unclosed quote,a,b\n', encoding="utf-8")
    assert_failed_with_one_line(validate("medbullets", path), str(path), "row 5", "malformed CSV")


def test_wrong_column_count(tmp_path):
    path = tmp_path / "medbullets_op4.csv"
    path.write_text(",".join(medbullets_columns(4)) + "\nhttps://x,Which drug?,a,b,c,d,A,a\n", encoding="utf-8")
    assert_failed_with_one_line(validate("medbullets_op4", path), f"{path} row 2: 8 fields but the header has 9")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert_failed_with_one_line(validate("medbullets", path), f"{path}: file is empty")


def test_not_utf8(tmp_path):
    path = write_jsonl(tmp_path / "medqa.jsonl", medqa_rows(2))
    path.write_bytes(path.read_bytes() + '{"question": "Sj\u00f6gren"}\n'.encode("latin-1"))
    assert_failed_with_one_line(validate("medqa", path), f"{path} line 3: not UTF-8")


def test_missing_file(tmp_path):
    assert_failed_with_one_line(validate("jama_full", tmp_path / "jama_raw.csv"), "jama_raw.csv: no such file")


REAL = [
    ("medqa", "medqa/medqa_us_test_4options.jsonl", "cases:        1273"),
    ("medqa_op5", "medqa/medqa_us_test_5options.jsonl", "cases:        1273"),
    ("medbullets", "medbullets/medbullets_op5.csv", "cases:        308"),
    ("medbullets_op4", "medbullets/medbullets_op4.csv", "cases:        308"),
]


@pytest.mark.parametrize("benchmark, relpath, expected", REAL, ids=[r[0] for r in REAL])
def test_real_files_validate(benchmark, relpath, expected, shared_data):
    result = validate(benchmark, shared_data / relpath)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    sha = hashlib.sha256((shared_data / relpath).read_bytes()).hexdigest()
    assert f"sha256:       {sha} (the pinned upstream {Path(relpath).name})" in result.stdout


def test_real_medqa_distribution(shared_data):
    result = validate("medqa", shared_data / "medqa/medqa_us_test_4options.jsonl")
    assert "gold letters: A 353 (27.7%), B 309 (24.3%), C 346 (27.2%), D 265 (20.8%)" in result.stdout
    assert "steps:        step1 679 (53.3%), step2&3 594 (46.7%)" in result.stdout
