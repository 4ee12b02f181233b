"""`medreason audit` over a real lm_eval run whose answers a scripted server wrote in known forms."""

import json
import re
import subprocess
import sys

import pytest

from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import read_results, run_lm_eval

# (reply template, the rule a careful reader uses for it); {gold} / {wrong} are letters, {text} the gold option's text.
REPLIES = (
    ("Key findings point one way.\n\nThe answer is ({gold}).", "phrase"),
    ("Weighing the options, the most likely diagnosis is {text}.", "text"),
    ("Short reasoning first.\n\n{gold}", "final_line"),
    ("I cannot determine this from the information given.", "none"),
    ("It could be {gold} or {wrong}; I am not sure.", "none"),
    ("Answer: {wrong}", "phrase"),
)


def scripted(data_root: str):
    """answer(prompt) for the fake server, and the rule each case's reply must be read by."""
    from lm_eval_medreason.data.loaders import load_cases

    replies, rules = {}, {}
    for i, case in enumerate(load_cases("medqa", {"data_dir": data_root})):
        template, rule = REPLIES[i % len(REPLIES)]
        gold = case["answer_idx"]
        wrong = next(letter for letter in case["options"] if letter != gold)
        replies[case["question"].strip()] = template.format(gold=gold, wrong=wrong, text=case["options"][gold])
        rules[case["id"]] = rule
    return (lambda prompt: next(r for q, r in replies.items() if q in prompt)), rules


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real `lm_eval` run of medqa_cot against the scripted server, with --log_samples."""
    from tests.support.synthetic import write_data_dir

    root = tmp_path_factory.mktemp("audit")
    data = write_data_dir(root / "data")
    answer, rules = scripted(str(data["root"]))
    with fake_chat_server(answer) as (url, _):
        run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
             "--tasks", "medqa_cot", "--metadata", json.dumps({"data_dir": str(data["root"])})],
            root / "out",
        )
    return root / "out", rules


def audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lm_eval_medreason.cli", "audit", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_sample_log_carries_the_rule_and_the_span_read(run):
    out, rules = run
    _, samples = read_results(out)
    for sample in samples["medqa_cot"]:
        scored = json.loads(sample["filtered_resps"][0])
        response = sample["resps"][0][0]
        assert scored["rule"] == rules[sample["doc"]["id"]], response
        if scored["rule"] == "none":
            assert scored["choice"] is None and scored["span"] == [None, None]
            continue
        start, end = scored["span"]
        evidence = response[start:end]
        if scored["rule"] == "text":
            assert sample["doc"]["options"][scored["choice"]].lower() in evidence.lower()
        else:
            assert scored["choice"] in evidence and len(evidence) <= 20, evidence


def test_audit_counts_by_rule_and_marks_the_span(run):
    out, rules = run
    result = audit(str(out), "--samples", "5", "--color", "never")
    assert result.returncode == 0, result.stderr
    expected = {rule: list(rules.values()).count(rule) for rule in ("phrase", "text", "final_line", "none")}
    for rule, n in expected.items():
        assert re.search(rf"^\s+{rule}\s+{n}\s", result.stdout, re.M), (rule, n, result.stdout)
    assert f"medqa_cot: {len(rules)} responses" in result.stdout
    assert f"no answer: {expected['none']} of {expected['none']}" in result.stdout
    text_section = result.stdout.split("answer read from an option's text")[1]
    marked = re.findall(r">>>(.*?)<<<", text_section, re.S)
    assert len(marked) == expected["text"] and all(m.strip() for m in marked)
    assert "I cannot determine this" in result.stdout  # a no-answer response is shown for the user to judge


def test_audit_samples_are_reproducible_and_cover_the_pool(run):
    out, _ = run
    first = audit(str(out), "--samples", "1", "--seed", "3").stdout
    assert first == audit(str(out), "--samples", "1", "--seed", "3").stdout
    shown = set()
    for seed in range(12):
        section = audit(str(out), "--samples", "1", "--seed", str(seed)).stdout.split("-- no answer")[1].split("--")[0]
        shown.update(re.findall(r"\[doc (\d+)\]", section))
    assert len(shown) == 2  # both no-answer responses get drawn by some seed


def test_audit_reads_an_older_log_without_rules_again(run, tmp_path):
    out, _ = run
    old = tmp_path / "old"
    for path in out.rglob("*"):
        if path.is_file():
            target = old / path.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text()
            if path.name.startswith("samples_"):
                lines = []
                for line in text.splitlines():
                    sample = json.loads(line)
                    scored = json.loads(sample["filtered_resps"][0])
                    sample["filtered_resps"] = [json.dumps({"choice": scored["choice"], "output_tokens": scored["output_tokens"]})]
                    lines.append(json.dumps(sample))
                text = "\n".join(lines) + "\n"
            target.write_text(text)
    now, before = audit(str(out), "--color", "never").stdout, audit(str(old), "--color", "never").stdout
    assert "logged without their rule" in before and "logged without their rule" not in now
    counts = lambda text: re.findall(r"^\s+(phrase|text|final_line|none)\s+(\d+)", text, re.M)  # noqa: E731
    assert counts(before) == counts(now)


def test_audit_of_a_folder_without_logs_is_one_line(tmp_path):
    result = audit(str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and str(tmp_path) in result.stderr
