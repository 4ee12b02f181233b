"""The free-form dataset hooks with a judge: the preflight's one-token request goes to a scripted local server
(moved out of unit/test_freeform.py, which needs no server)."""

import json

from lm_eval_medreason.evaluation import freeform
from lm_eval_medreason.evaluation import hooks as harness
from tests.support.fake_openai import fake_chat_server


def test_dataset_hooks_add_judge_settings_but_no_key(synthetic_data, clean_env, monkeypatch):
    monkeypatch.setenv("MEDREASON_JUDGE_API_KEY", "sk-never-logged")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-logged-either")
    monkeypatch.setenv("MEDREASON_JUDGE_CACHE_DIR", "off")
    root = str(synthetic_data["root"])
    with fake_chat_server(lambda prompt: "Verdict: CORRECT") as (url, _):  # the preflight's one-token request
        base_url = url.removesuffix("/chat/completions")
        for name in ("jama", "jama_full", "medbullets", "medqa"):
            plain = getattr(harness, f"{name}_dataset")(data_dir=root)["test"]
            docs = getattr(freeform, f"{name}_dataset")(data_dir=root, judge_model="judge", judge_base_url=base_url)["test"]
            assert docs["id"] == plain["id"] and docs["answer"] == plain["answer"]
            assert docs[0]["judge"]["model"] == "judge" and docs[0]["judge"]["base_url"] == base_url
            assert "sk-never" not in json.dumps(docs.to_list())
    matcher_docs = freeform.medqa_dataset(data_dir=root)["test"]
    assert matcher_docs[0]["judge"]["model"] is None
