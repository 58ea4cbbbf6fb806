"""lm-evaluation-harness: the `inattn` model class scores a model trained on a repetitive corpus
above an untrained one, on local tasks of all three request types, through inattn-eval and
through the harness's own command line (inattn-lm-eval); an exported folder runs under the
plain `lm_eval --model hf`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval")

from inattn.checkpoints.pretrained import load_model  # noqa: E402
from inattn.cli import eval as eval_cli  # noqa: E402
from inattn.model import GPT  # noqa: E402
from tests.helpers import (  # noqa: E402
    cli_in_process,
    one_thread,  # noqa: E402, F401
    train_in_process,
)
from tests.hf_helpers import random_checkpoint, save_checkpoint  # noqa: E402

SENTENCE = "the cat sat on the mat and the dog ran far away from the big red house"
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
}


def write_tasks(folder: Path) -> Path:
    """Three tasks on the sentence: next word among four (loglikelihood), the sentence's
    perplexity (loglikelihood_rolling), and the next two words (generate_until)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = SENTENCE.split()
    wrong = ["house", "dog", "far", "cat", "red", "sat"]
    mc, gen = [], []
    for i in range(3, len(words) - 1):
        choices = [words[i]] + [w for w in wrong if w != words[i]][:3]
        # the harness puts its target delimiter, a space, between context and choice
        mc.append({"context": " ".join(words[:i]), "choices": choices})
        gen.append({"context": " ".join(words[:i]), "answer": " ".join(words[i : i + 2])})
    lines = {
        "mc.jsonl": mc,
        "text.jsonl": [{"text": SENTENCE + " " + SENTENCE}] * 2,
        "gen.jsonl": gen,
    }
    for name, rows in lines.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    def task(name: str, data: str, body: str) -> None:
        head = f"task: {name}\ndataset_path: json\ntest_split: test\n"
        files = f"dataset_kwargs:\n  data_files:\n    test: {folder / data}\n"
        (folder / f"{name}.yaml").write_text(head + files + body)

    task(
        "repeat_mc",
        "mc.jsonl",
        "output_type: multiple_choice\ndoc_to_text: '{{context}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: 0\nmetric_list:\n  - metric: acc\n",
    )
    task(
        "repeat_ppl",
        "text.jsonl",
        "output_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n"
        "metric_list:\n  - metric: word_perplexity\n  - metric: bits_per_byte\n",
    )
    task(
        "repeat_gen",
        "gen.jsonl",
        "output_type: generate_until\ndoc_to_text: '{{context}}'\ndoc_to_target: '{{answer}}'\n"
        "generation_kwargs:\n  until: ['\\n']\n  max_gen_toks: 3\n  do_sample: false\n"
        "filter_list:\n  - name: first-two-words\n    filter:\n"
        "      - function: regex\n        regex_pattern: '(\\w+ \\w+)'\n"
        "      - function: take_first\n"
        "metric_list:\n  - metric: exact_match\n",
    )
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory, request) -> tuple[Path, Path, Path]:
    """(trained checkpoint, untrained checkpoint of the same shape and tokenizer, tasks)."""
    request.getfixturevalue("one_thread")
    root = tmp_path_factory.mktemp("lm-eval")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text((SENTENCE + " ") * 300)
    (corpus / "val.txt").write_text((SENTENCE + " ") * 20)
    overrides = [
        "data=files",
        f"data.train_files=[{corpus / 'train.txt'}]",
        f"data.val_files={corpus / 'val.txt'}",
        "arch=inattn",
        "size=nano",
        "context_length=32",
        "batch_size=8",
        "tokenizer.vocab_size=300",
        "trainer.max_steps=40",
        "trainer.val_check_interval=40",
        "trainer.limit_val_batches=1",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "optim.lr=3e-3",
        "optim.warmup_steps=5",
        "logger=csv",
        f"paths.root={root}",
        f"paths.cache={root / 'cache'}",
    ]
    train_in_process(overrides, root / "run")
    trained = root / "run" / "checkpoints" / "last.ckpt"
    loaded = load_model(trained)
    torch.manual_seed(0)
    untrained = save_checkpoint(GPT(loaded.cfg), loaded.tokenizer, root / "untrained.ckpt")
    return trained, untrained, write_tasks(root / "tasks")


TASKS = "[repeat_mc,repeat_ppl,repeat_gen]"


def scores_of(ckpt: Path, tasks: Path, capsys, monkeypatch) -> dict[str, float]:
    args = [f"ckpt={ckpt}", f"tasks={TASKS}", f"include_path={tasks}", "logger.mode=disabled"]
    args.append(f"output={ckpt.parent}")
    code, out, err = cli_in_process(eval_cli.main, args, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    assert "repeat_mc" in out  # the table
    saved = json.loads((ckpt.parent / "eval.json").read_text())["tasks"]
    return {
        "acc": saved["repeat_mc"]["acc,none"],
        "ppl": saved["repeat_ppl"]["word_perplexity,none"],
        "em": saved["repeat_gen"]["exact_match,first-two-words"],
    }


@pytest.mark.slow  # about 70 s on two busy cores: a short training run and two evaluations
def test_trained_scores_above_untrained(models, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    trained, untrained, tasks = models
    good = scores_of(trained, tasks, capsys, monkeypatch)
    bad = scores_of(untrained, tasks, capsys, monkeypatch)
    assert good["acc"] > bad["acc"] and good["acc"] >= 0.9, (good, bad)
    assert good["ppl"] < bad["ppl"] / 10, (good, bad)
    assert good["em"] > bad["em"] and good["em"] >= 0.5, (good, bad)


@pytest.mark.slow  # the harness's command line starts in about 40 s
def test_the_harness_command_line_runs_the_inattn_model(models, tmp_path):
    trained, _, tasks = models
    cmd = [
        *(sys.executable, "-m", "inattn.lm_eval_model", "--model", "inattn"),
        *("--model_args", f"checkpoint={trained}", "--tasks", "repeat_mc"),
        *("--include_path", str(tasks), "--output_path", str(tmp_path / "out")),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = (tmp_path / "out").rglob("results*.json")
    assert json.loads(path.read_text())["results"]["repeat_mc"]["acc,none"] >= 0.9


def test_bad_eval_input_is_one_line(tmp_path, capsys, monkeypatch):
    trained = random_checkpoint(tmp_path / "model.ckpt")
    tasks = write_tasks(tmp_path / "tasks")
    rows = [
        ([f"ckpt={tmp_path / 'none.ckpt'}", "tasks=[repeat_mc]"], "ckpt"),
        ([f"ckpt={trained}", "tasks=[no_such_task]", f"include_path={tasks}"], "tasks"),
        ([f"ckpt={trained}", "tasks=[repeat_mc]", "limit=-1"], "limit"),
    ]
    for args, field in rows:
        args = [*args, "logger.mode=disabled", f"output={tmp_path}"]
        code, out, err = cli_in_process(eval_cli.main, args, capsys, monkeypatch)
        assert code == 2, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and field in errors[0] and "Traceback" not in err, err
    args = [f"ckpt={trained}", "tasks=[repeat_mc]", "logger.mode=sometimes", f"output={tmp_path}"]
    code, _, err = cli_in_process(eval_cli.main, args, capsys, monkeypatch)
    assert code == 2 and "error: logger.mode:" in err and "Traceback" not in err, err
    assert not list(tmp_path.rglob("eval.json"))


@pytest.mark.slow  # two harness runs (about 80 s)
def test_exported_folder_scores_the_same_under_the_harness_hf_model(
    models, tmp_path, capsys, monkeypatch
):
    """The harness's own `hf` model on the exported folder (plain `lm_eval`, remote code) gives
    the `inattn` class's scores: an outside check of its loglikelihoods and generation."""
    from inattn.cli import export as export_cli

    trained, _, tasks = models
    out = tmp_path / "hf"
    code, _, err = cli_in_process(
        export_cli.main, [f"ckpt={trained}", f"out={out}"], capsys, monkeypatch
    )
    assert code == 0, err
    ours = scores_of(trained, tasks, capsys, monkeypatch)
    cmd = [
        *(sys.executable, "-m", "lm_eval", "--model", "hf", "--device", "cpu"),
        *("--model_args", f"pretrained={out},trust_remote_code=True,dtype=float32"),
        *("--tasks", "repeat_mc,repeat_ppl,repeat_gen", "--batch_size", "1"),
        *("--include_path", str(tasks), "--output_path", str(tmp_path / "results")),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = (tmp_path / "results").rglob("results*.json")
    theirs = json.loads(path.read_text())["results"]
    assert theirs["repeat_mc"]["acc,none"] == ours["acc"]
    assert theirs["repeat_ppl"]["word_perplexity,none"] == pytest.approx(ours["ppl"], rel=1e-4)
    assert theirs["repeat_gen"]["exact_match,first-two-words"] == ours["em"]


def test_scores_equal_the_plain_computation(tmp_path):
    """Batched, padded, truncated scoring against one plain forward per request."""
    from lm_eval.api.instance import Instance

    from inattn.lm_eval_model import InAttnLM

    lm = InAttnLM(str(random_checkpoint(tmp_path / "m.ckpt", arch="inattn")), "cpu", batch_size=2)
    long_context = " ".join([SENTENCE] * 8)  # more tokens than the 64 learned positions
    pairs = [
        lm.encode_pair("the cat sat", " on the mat"),
        lm.encode_pair("", "the dog"),
        lm.encode_pair(long_context, " and then"),
        lm.encode_pair("far away ", "from"),
    ]
    assert len(pairs[2][0]) > lm.max_length
    for (context, continuation), (logp, greedy) in zip(pairs, lm.score(pairs), strict=True):
        ids = torch.tensor([(context + continuation)[-(lm.max_length + 1) :]])
        with torch.no_grad():
            plain = torch.log_softmax(lm.model(ids[:, :-1]), -1)[0, -len(continuation) :]
        target = torch.tensor(continuation)
        assert logp == pytest.approx(plain.gather(1, target[:, None]).sum().item(), abs=1e-4)
        assert greedy == bool((plain.argmax(-1) == target).all())
    text = SENTENCE
    (rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ids = torch.tensor([[lm.eot_id, *lm.encode(text)]])
    with torch.no_grad():
        plain = torch.log_softmax(lm.model(ids[:, :-1]), -1)[0]
    assert rolling == pytest.approx(plain.gather(1, ids[0, 1:, None]).sum().item(), abs=1e-4)
