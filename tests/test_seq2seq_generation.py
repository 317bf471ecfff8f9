"""Tier 2: the generation path on tiny random encoder-decoder models (T5, Marian) built from configs (no downloads).

Invariants pinned: the rollout's old log-probs equal the training forward's at the sampling temperature; the KL to
the reference is 0 at step 0 (frozen copy, or LoRA with adapters disabled); a paid token's frequency rises from
rewards alone; one rollout trained as 1 micro-batch of 8 prompts or 2 of 4 gives the same update (gradient
accumulation; one process vs two, T5 and Marian, is in tests/test_distributed.py); the saved folder reloads with
`AutoModelForSeq2SeqLM` and decodes like the trained model. The tiny models are in tests/tiny_seq2seq.py.
"""

import json

import pytest
import torch
from tiny_lm import prompt_dataset
from tiny_seq2seq import seq2seq_tokenizer, tiny_marian, tiny_t5
from transformers import (
    AutoModelForSeq2SeqLM,
    BartConfig,
    MarianConfig,
    PretrainedConfig,
    T5Config,
)

from trl_tokenlevel import (
    GenerationRLConfig,
    Seq2SeqGenerationRLTrainer,
    TokenLevelRLTrainer,
)
from trl_tokenlevel.generation.rollout import (
    policy_forward,
    sample_completions,
    token_logprobs,
    tokenize_prompts,
)
from trl_tokenlevel.generation.value_head import VALUE_HEAD_FILE
from trl_tokenlevel.models.kinds import kind_of
from trl_tokenlevel.models.peft_presets import get_peft_config

BUILDERS = {"t5": tiny_t5, "marian": tiny_marian}
TOKENIZER = seq2seq_tokenizer()
TARGET = TOKENIZER.convert_tokens_to_ids("w7")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread than on two contended ones (shared CI cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pays_for_w7(prompts, completions, completion_ids, **kwargs):
    """Dense: 1 for every sampled w7."""
    return [[1.0 if t == TARGET else 0.0 for t in ids] for ids in completion_ids]


def make_trainer(tmp_path, kind="t5", model=None, train=None, peft_config=None, **overrides):
    values = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=8, num_samples=4, max_new_tokens=6, learning_rate=1e-2,
        logging_steps=5, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, max_steps=20,
        disable_dropout=True,  # the configs have dropout 0.1: off, so the rollout policy is the trained one
    )
    values.update(overrides)
    return TokenLevelRLTrainer(
        model=model if model is not None else BUILDERS[kind](), reward_funcs=[pays_for_w7],
        args=GenerationRLConfig(**values), train_dataset=train if train is not None else prompt_dataset(160),
        processing_class=TOKENIZER, peft_config=peft_config,
    )


def target_frequency(model, seed=123, prompts=64):
    """Share of w7 among the sampled decoder tokens (temperature 1, fixed seed)."""
    torch.manual_seed(seed)
    ids, mask = tokenize_prompts(prompt_dataset(prompts, seed=9)["prompt"], TOKENIZER, None, "cpu", padding_side="right")
    rollout = sample_completions(
        model, ids, mask, 2, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=6, eos_token_ids=[1], pad_token_id=0
    )
    return float((rollout.completion_ids[rollout.completion_mask.bool()] == TARGET).float().mean())


def test_encoder_decoder_models_map_to_the_seq2seq_kind_and_trainer():
    for config in (T5Config(architectures=["T5ForConditionalGeneration"]), MarianConfig(architectures=["MarianMTModel"]),
                   BartConfig(architectures=["BartForConditionalGeneration"])):
        assert kind_of(config).pipeline_task == "text2text-generation", config.architectures
        assert kind_of(config).auto_class == "AutoModelForSeq2SeqLM"
    assert kind_of(T5Config(architectures=["T5ForTokenClassification"])).pipeline_task == "token-classification"
    # a decoder-only "...ForConditionalGeneration" (vision-language models) is not a seq2seq LM
    assert kind_of(PretrainedConfig(architectures=["LlavaForConditionalGeneration"]), default=None) is None
    assert kind_of(tiny_marian()).pipeline_task == "text2text-generation"  # MarianMTModel: no suffix to match
    trainer = make_trainer("/tmp/unused-seq2seq", max_steps=1)
    assert type(trainer) is Seq2SeqGenerationRLTrainer and trainer.decoder_start_token_id == 0
    assert trainer.encode_prompts(["w1 w2 w3", "w4"])[0].tolist() == [[4, 5, 6, 1], [7, 1, 0, 0]]  # right-padded


def test_encoder_prompts_are_right_padded_and_truncated_at_their_end():
    ids, mask = tokenize_prompts(["w1 w2 w3", "w4"], TOKENIZER, None, "cpu", padding_side="right")
    assert ids.tolist() == [[4, 5, 6, 1], [7, 1, 0, 0]] and mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    ids, _ = tokenize_prompts(["w1 w2 w3 w4 w5"], TOKENIZER, 3, "cpu", padding_side="right")
    assert ids.tolist() == [[4, 5, 1]]  # keeps the beginning and the EOS the encoder was trained with


@pytest.mark.parametrize("kind", ["t5", "marian"])
def test_rollout_logprobs_match_the_training_forward_at_the_sampling_temperature(kind):
    model = BUILDERS[kind]().eval()
    ids, mask = tokenize_prompts(["w1 w2 w3", "w4"], TOKENIZER, None, "cpu", padding_side="right")
    torch.manual_seed(0)
    rollout = sample_completions(
        model, ids, mask, 3, temperature=0.7, top_p=1.0, top_k=0, max_new_tokens=5, eos_token_ids=[1], pad_token_id=0
    )
    assert rollout.completion_ids.shape[1] <= 5  # decoder_start stripped: one column per generated step
    with torch.no_grad():
        logits, _ = policy_forward(model, vars(rollout), decoder_start_token_id=0)
    forward = token_logprobs(logits, rollout.completion_ids, 0.7) * rollout.completion_mask
    torch.testing.assert_close(forward, rollout.old_logprobs, atol=1e-5, rtol=1e-5)
    wrong_temperature = token_logprobs(logits, rollout.completion_ids, 1.0) * rollout.completion_mask
    assert (wrong_temperature - rollout.old_logprobs).abs().max() > 1e-2


@pytest.mark.parametrize("kind,use_peft", [("t5", False), ("marian", True)])
def test_kl_is_zero_at_step_zero(tmp_path, kind, use_peft):
    peft_config = None
    if use_peft:  # Marian's LoRA targets come from our presets (PEFT has no row for it)
        peft_config = get_peft_config("lora", "marian", task_type="SEQ_2_SEQ_LM", lora_r=4, lora_dropout=0.0)
    trainer = make_trainer(
        tmp_path, kind, kl_coef=0.1, max_steps=3, logging_steps=1, peft_config=peft_config, kl_placement="loss",
        learning_rate=5e-2, train=prompt_dataset(48),
    )
    assert (trainer.ref_model is None) == use_peft  # PEFT: adapters disabled, no copy
    trainer.train()
    kls = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert abs(kls[0]) < 1e-5 and abs(trainer.state.log_history[0]["kl_k3"]) < 1e-5, kls  # dropout is off
    assert kls[-1] > 1e-4, kls  # and it moves once the policy does


def test_dense_reward_raises_the_frequency_of_the_paid_token(tmp_path):
    trainer = make_trainer(tmp_path, "t5")
    before = target_frequency(trainer.model)
    trainer.train()
    after = target_frequency(trainer.model)
    assert before < 0.1 and after > 0.5, (before, after)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs[-1]["reward"] > logs[0]["reward"] + 1.0


def test_gradient_accumulation_gives_the_same_update(tmp_path):
    """One rollout of 8 prompts trained as 1 micro-batch of 8 or 2 of 4: same loss normalisation, same SGD step."""
    params = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}", "marian", train=prompt_dataset(8), per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
            lr_scheduler_type="constant", logging_steps=1,
        )
        trainer.train()
        params.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert not torch.equal(params[0], torch.cat([p.flatten() for p in tiny_marian().parameters()]))
    torch.testing.assert_close(params[0], params[1], rtol=1e-4, atol=1e-6)


def test_value_head_on_the_decoder_trains_and_the_saved_folder_loads_and_decodes(tmp_path):
    def constant_plus_w7(prompts, completions, completion_ids, **kwargs):
        return [[0.5 + (t == TARGET) for t in ids] for ids in completion_ids]

    trainer = Seq2SeqGenerationRLTrainer(
        model=tiny_t5(), reward_funcs=[constant_plus_w7], train_dataset=prompt_dataset(96), processing_class=TOKENIZER,
        args=GenerationRLConfig(
            output_dir=str(tmp_path), per_device_train_batch_size=8, num_samples=4, max_new_tokens=6,
            learning_rate=2e-2, advantage_estimator="gae", vf_coef=1.0, num_ppo_epochs=2, logging_steps=4,
            max_steps=16, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0,
            disable_dropout=True,
        ),
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "value_loss" in h]
    assert logs[-1]["value_loss"] < 0.5 * logs[0]["value_loss"], [h["value_loss"] for h in logs]

    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / VALUE_HEAD_FILE).is_file()
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "saved")).eval()
    ids, mask = tokenize_prompts(["w1 w2 w3", "w4 w9"], TOKENIZER, None, "cpu", padding_side="right")
    trained = trainer.model.eval()
    greedy = dict(do_sample=False, max_new_tokens=6, pad_token_id=0, eos_token_id=1)
    out = reloaded.generate(input_ids=ids, attention_mask=mask, **greedy)
    assert torch.equal(out, trained.generate(input_ids=ids, attention_mask=mask, **greedy))
    assert out.shape[1] > 1 and (out[:, 0] == 0).all()  # decodes, starting from decoder_start_token_id
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "pipeline_tag: text2text-generation" in card and "AutoModelForSeq2SeqLM.from_pretrained" in card
    assert "encoder-decoder model: decoder outputs are sampled" in card
    assert "max_new_tokens" in card and "advantage_estimator" in card  # the generation config table
    args = json.loads((tmp_path / "saved" / "training_args.json").read_text())
    assert args["advantage_estimator"] == "gae"
