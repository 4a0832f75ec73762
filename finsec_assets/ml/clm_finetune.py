"""Causal-LM fine-tuning on one company's filings (JumpStart's GPT-J experiment, measured honestly).

The model trains on the company's 10-K/10-Q sections except MD&A and is validated
on its MD&A, which it never sees: perplexity before and after is
exp(mean token NLL) over that held-out text, computed here (not the Trainer's
eval loss). JumpStart validated on MD&A that was also in its training text.

Base model, by ``base``:

* ``""`` (default): a GPT-J-architecture model built from a config (tiny by
  default, sized by ``scratch``) with a byte-level BPE tokenizer trained on the
  *other* companies' text, then pretrained on that text (``base_training``), so
  that "before" is a model that knows filing language but not this company.
  That base is cached under ``runs/base-<hash>`` and reused while its inputs
  are unchanged.
* a path, file:// or s3:// URI of any Hugging Face causal LM (a real GPT-J-6B
  included: on a GPU, DeepSpeed ZeRO-3 with the optimizer offloaded to CPU is
  chosen automatically when a full fine-tune would not fit), or a finsec
  checkpoint root (its LATEST version).

After training, the checkpoint continues the prompts of
``GenerationSettings.prompts`` with JumpStart's sampling parameters (top_k 250,
top_p 0.8, temperature 1, max_length 400); the texts go into the manifest.

Run it by hand::

    python -m finsec_assets.ml.clm_finetune --set corpus_uri=corpus.parquet --set cik=104169

or let the ``finetuned_checkpoint`` asset launch it through Dagster Pipes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .training import (
    CHECKPOINT_FORMAT,
    LOSS_CURVE,
    MANIFEST,
    MDNA_ITEMS,
    STAGE_DONE,
    CheckpointStore,
    Hyperparameters,
    Publication,
    StageResult,
    TokenBlocks,
    TrainingInputError,
    barrier,
    causal_lm_collate,
    causal_lm_perplexity,
    check_tokenizer_matches_model,
    checkpoint_summary,
    code_version,
    config_from,
    corpus_index,
    corpus_sha256,
    corpus_texts,
    count_parameters,
    default_checkpoint_root,
    entry_point_session,
    environment_info,
    fingerprint,
    load_tokenizer,
    model_identity,
    plot_loss_curves,
    process_rank,
    quiet_libraries,
    resolve_model_source,
    run_training_stage,
    sampled_token_blocks,
    select_deepspeed_config,
    text_sample,
    training_blocks,
    write_json,
)

ASSET_NAME = "finetuned_checkpoint"
ENTRY_MODULE = "finsec_assets.ml.clm_finetune"
END_OF_TEXT = "<|endoftext|>"
PROMPTS = ("This Form 10-K report shows that", "We serve consumers through", "This year we particularly focus on")


@dataclasses.dataclass
class ScratchCausalLM:
    """GPT-J architecture from a config; the defaults are CPU-sized."""

    vocab_size: int = 4096
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    rotary_dim: int = 16
    n_positions: int = 1024
    tokenizer_training_chars: int = 20_000_000


@dataclasses.dataclass
class GenerationSettings:
    """JumpStart's sampling parameters; ``max_length`` counts the prompt's tokens too."""

    prompts: list = dataclasses.field(default_factory=lambda: list(PROMPTS))
    max_length: int = 400
    top_k: int = 250
    top_p: float = 0.8
    temperature: float = 1.0
    do_sample: bool = True
    seed: int = 42


@dataclasses.dataclass
class ClmFinetuneConfig:
    corpus_uri: str
    cik: int
    ticker: str = ""  # a label for the manifest; the company is chosen by cik
    checkpoint_root: str = ""  # default: checkpoints/finetuned_checkpoint in the project's object store
    work_dir: str = ""  # local scratch for a remote checkpoint root (default FINSEC_HOME/work)
    base: str = ""  # "" = GPT-J from config, pretrained on the other companies; or a path / file:// / s3:// model
    eval_items: list = dataclasses.field(default_factory=lambda: list(MDNA_ITEMS))
    seq_len: int = 128
    # 0 = as many as the training steps consume (steps x batch x accumulation x processes), whatever the corpus's size
    max_train_blocks: int = 0
    max_base_blocks: int = 0  # of the other companies' text; 0 = as many as base_training's steps consume
    max_eval_blocks: int = 64  # 0 = all of the company's MD&A
    eval_batch_size: int = 8
    scratch: ScratchCausalLM = dataclasses.field(default_factory=ScratchCausalLM)
    base_training: Hyperparameters = dataclasses.field(
        default_factory=lambda: Hyperparameters(max_steps=150, learning_rate=1e-3, warmup_ratio=0.05, save_steps=50)
    )
    training: Hyperparameters = dataclasses.field(
        default_factory=lambda: Hyperparameters(max_steps=60, learning_rate=3e-4, save_steps=20)
    )
    generation: GenerationSettings = dataclasses.field(default_factory=GenerationSettings)
    deepspeed: str = "auto"  # auto | off | zero2 | zero3_offload | path to a JSON config
    attn_implementation: str = ""  # "" = the library default
    load_dtype: str = "auto"  # auto: the checkpoint's dtype when DeepSpeed trains it on a GPU, else float32
    data_versions: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: dict) -> ClmFinetuneConfig:
        cfg = config_from(cls, raw, "clm_finetune config")
        cfg.training.validate("clm_finetune config.training")
        cfg.base_training.validate("clm_finetune config.base_training")
        if cfg.seq_len < 8:
            raise TrainingInputError(f"clm_finetune config.seq_len={cfg.seq_len}: use at least 8 tokens")
        if cfg.load_dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise TrainingInputError(f"clm_finetune config.load_dtype={cfg.load_dtype!r}: use auto, float32, bfloat16 or float16")
        if not cfg.eval_items:
            raise TrainingInputError("clm_finetune config.eval_items is empty: name the held-out MD&A items")
        return cfg

    def fingerprint_fields(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("corpus_uri", "checkpoint_root", "work_dir", "data_versions", "base", "ticker"):
            d.pop(k)
        for hp in ("training", "base_training"):
            d[hp].pop("logging_steps")
            d[hp].pop("save_steps")
        if self.base:
            d.pop("scratch")
            d.pop("base_training")
            d.pop("max_base_blocks")
        return d


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int, max_chars: int, model_max_length: int):
    """A GPT-2-style byte-level BPE tokenizer learned from the corpus, ``<|endoftext|>`` its one special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text_sample(texts, max_chars), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                   unk_token=END_OF_TEXT, pad_token=END_OF_TEXT, model_max_length=model_max_length)


def _eos_packing(tokenizer) -> dict:
    if tokenizer.eos_token_id is None:
        raise TrainingInputError("the tokenizer has no end-of-text token to separate documents")
    return {"separator": [tokenizer.eos_token_id]}


def _torch_dtype(name: str, use_deepspeed: bool):
    import torch

    if name == "auto":
        return "auto" if (use_deepspeed and torch.cuda.is_available()) else torch.float32
    return getattr(torch, name)


def load_causal_lm(model_dir: Path, dtype, attn_implementation: str = ""):
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise TrainingInputError(f"base model {str(model_dir)!r} cannot be loaded as a causal LM: {exc}") from exc
    _causal_loss(model)
    return model


def _causal_loss(model) -> None:
    """transformers picks a model's loss from its class name; classes not named *ForCausalLM (GPT2LMHeadModel)
    get a warning and a guess. Say it: next-token cross-entropy."""
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"


def pretrain_scratch_base(cfg: ClmFinetuneConfig, others, checkpoints: CheckpointStore, *, logger=None,
                          callbacks: Sequence = ()) -> tuple[Path, StageResult, str]:
    """The default base: GPT-J from a config, tokenizer and weights trained on the other companies."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    if others.empty:
        raise TrainingInputError(
            f"the default base is pretrained on the other companies' filings, but the corpus holds only cik {cfg.cik}; "
            "add filings of other companies or set base to a model path"
        )
    key = "base-" + fingerprint({
        "code": code_version(), "corpus": corpus_sha256(others), "scratch": dataclasses.asdict(cfg.scratch),
        "training": {k: v for k, v in dataclasses.asdict(cfg.base_training).items() if k not in ("logging_steps", "save_steps")},
        "seq_len": cfg.seq_len, "max_base_blocks": cfg.max_base_blocks, "attn": cfg.attn_implementation,
    })
    run = checkpoints.run_state(key, cfg.work_dir or None)
    if run.final_ready():
        stage = StageResult.from_dict({**json.loads((run.final_dir / STAGE_DONE).read_text()), "reused": True})
        if logger is not None:
            logger.info(f"base: reusing the pretrained base {key} ({stage.global_step} steps)")
        return run.final_dir, stage, key
    positions = max(cfg.scratch.n_positions, cfg.seq_len, cfg.generation.max_length)
    texts = (text for _, text in corpus_texts(cfg.corpus_uri, others["row"]))  # streamed up to the character cap
    tokenizer = train_bpe_tokenizer(texts, cfg.scratch.vocab_size, cfg.scratch.tokenizer_training_chars, positions)
    eos = tokenizer.eos_token_id
    config = GPTJConfig(
        vocab_size=-(-len(tokenizer) // 64) * 64, n_positions=positions, n_embd=cfg.scratch.n_embd,
        n_layer=cfg.scratch.n_layer, n_head=cfg.scratch.n_head, rotary_dim=cfg.scratch.rotary_dim,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, tie_word_embeddings=False,
    )
    if cfg.attn_implementation:
        config._attn_implementation = cfg.attn_implementation
    torch.manual_seed(cfg.base_training.seed)
    model = GPTJForCausalLM(config)
    _causal_loss(model)
    blocks, _ = sampled_token_blocks(cfg.corpus_uri, others, tokenizer, cfg.seq_len,
                                     cfg.max_base_blocks or training_blocks(cfg.base_training), **_eos_packing(tokenizer))
    if logger is not None:
        logger.info(f"base: GPT-J {count_parameters(model):,} parameters, BPE vocabulary {len(tokenizer)}, "
                    f"{len(blocks)} blocks from {others['cik'].nunique()} other companies")
    stage = run_training_stage(
        "base", model, tokenizer, TokenBlocks(blocks), causal_lm_collate, cfg.base_training, run,
        deepspeed_config=select_deepspeed_config(cfg.deepspeed, count_parameters(model)), callbacks=callbacks,
        logger=logger,
    )
    if process_rank() == 0:
        run.cleanup(keep_final=True)  # the base stays cached; its optimizer states go
    return run.final_dir, stage, key


def generate_texts(model, tokenizer, settings: GenerationSettings, device: str | None = None) -> list[dict]:
    """Sampled continuations of each prompt (seeded per prompt, so a rerun gives the same texts).

    ``max_length`` counts the prompt, as in JumpStart; a prompt at or past it still gets one new token,
    and nothing runs past the model's position table."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    positions = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    model.to(device).eval()
    out = []
    for i, prompt in enumerate(settings.prompts):
        enc = tokenizer(prompt, return_tensors="pt").to(device)
        n_prompt = int(enc["input_ids"].shape[1])
        new_tokens = max(1, settings.max_length - n_prompt)
        if positions:
            new_tokens = min(new_tokens, positions - n_prompt)
        if new_tokens < 1:
            raise TrainingInputError(f"prompt {prompt!r} has {n_prompt} tokens, as many as the model's {positions} positions")
        torch.manual_seed(settings.seed + i)
        with torch.inference_mode():
            ids = model.generate(
                **enc, do_sample=settings.do_sample, max_new_tokens=new_tokens, top_k=settings.top_k,
                top_p=settings.top_p, temperature=settings.temperature, pad_token_id=tokenizer.eos_token_id,
            )
        out.append({"prompt": prompt, "text": tokenizer.decode(ids[0], skip_special_tokens=True),
                    "new_tokens": int(ids.shape[1] - n_prompt)})
    return out


def finetune_clm(cfg: ClmFinetuneConfig, *, logger=None, callbacks: Sequence = (), base_callbacks: Sequence = ()) -> dict | None:
    """Run (or reuse) one causal-LM fine-tune; returns the published checkpoint's summary (None on ranks > 0)."""
    info = logger.info if logger is not None else (lambda *_: None)
    checkpoints = CheckpointStore(cfg.checkpoint_root or default_checkpoint_root(ASSET_NAME))
    ticket = checkpoints.reserve_ticket() if process_rank() == 0 else None  # this run's place in LATEST's order
    corpus = corpus_index(cfg.corpus_uri)  # one small row per section; the text stays in the file
    company = corpus[corpus["cik"].astype(int) == int(cfg.cik)]
    if company.empty:
        present = sorted(int(c) for c in corpus["cik"].unique())
        raise TrainingInputError(f"cik {cfg.cik} has no filing text in the training corpus (ciks present: {present})")
    eval_items = [str(i) for i in cfg.eval_items]
    held = company[company["item"].isin(eval_items)]
    train = company[~company["item"].isin(eval_items)]
    label = cfg.ticker or f"cik {cfg.cik}"
    if held.empty:
        raise TrainingInputError(f"{label} has no MD&A (items {eval_items}) in the training corpus to validate on")
    if train.empty:
        raise TrainingInputError(f"{label} has no sections besides MD&A (items {eval_items}) to train on")
    info(f"{label}: {train['accession'].nunique()} filings, {len(train)} training sections, "
         f"{len(held)} held-out MD&A sections")

    base_stage, base_key = None, None
    if cfg.base:
        base_dir = resolve_model_source(cfg.base)
        base_identity = model_identity(base_dir)
    else:
        others = corpus[corpus["cik"].astype(int) != int(cfg.cik)]
        base_dir, base_stage, base_key = pretrain_scratch_base(cfg, others, checkpoints, logger=logger,
                                                              callbacks=base_callbacks)
        base_identity = base_key
    version = fingerprint({"kind": "causal-lm", "code": code_version(), "company": corpus_sha256(company),
                           "base": base_identity, "config": cfg.fingerprint_fields()})
    if checkpoints.is_published(version):
        info(f"checkpoint {version} already published for these inputs; pointing LATEST at it")
        if process_rank() != 0:
            return None
        publication = checkpoints.republish(version, ticket)
        info(publication.describe())
        return _summary(publication, checkpoints.read_manifest(version), reused=True)

    tokenizer = load_tokenizer(base_dir)
    deepspeed_possible = cfg.deepspeed != "off" and importlib.util.find_spec("deepspeed") is not None
    model = load_causal_lm(base_dir, _torch_dtype(cfg.load_dtype, deepspeed_possible), cfg.attn_implementation)
    check_tokenizer_matches_model(tokenizer, model.config, str(base_dir), cfg.seq_len)
    packing = _eos_packing(tokenizer)
    train_blocks, _ = sampled_token_blocks(cfg.corpus_uri, train, tokenizer, cfg.seq_len,
                                           cfg.max_train_blocks or training_blocks(cfg.training), **packing)
    eval_blocks, _ = sampled_token_blocks(cfg.corpus_uri, held, tokenizer, cfg.seq_len, cfg.max_eval_blocks or None,
                                          **packing)
    if len(eval_blocks) == 0:
        raise TrainingInputError(f"too little held-out MD&A for {label}: {int(held['chars'].sum())} characters give "
                                 f"less than one block of {cfg.seq_len} tokens")
    info(f"packed {len(train_blocks)} training and {len(eval_blocks)} held-out MD&A blocks of {cfg.seq_len} tokens")

    ppl_before = causal_lm_perplexity(model, eval_blocks, batch_size=cfg.eval_batch_size) if process_rank() == 0 else float("nan")
    info(f"held-out MD&A perplexity before: {ppl_before:.3f}")
    ds_config = select_deepspeed_config(cfg.deepspeed, count_parameters(model))
    if cfg.training.gradient_checkpointing:
        model.config.use_cache = False
    run = checkpoints.run_state(version, cfg.work_dir or None)
    stage = run_training_stage(
        "finetune", model, tokenizer, TokenBlocks(train_blocks), causal_lm_collate, cfg.training, run,
        deepspeed_config=ds_config, callbacks=callbacks, logger=logger,
    )
    del model
    barrier()
    if process_rank() != 0:
        return None

    final = run.final_dir
    trained = load_causal_lm(final, _torch_dtype(cfg.load_dtype, ds_config is not None))
    trained.config.use_cache = True
    ppl_after = causal_lm_perplexity(trained, eval_blocks, batch_size=cfg.eval_batch_size)
    info(f"held-out MD&A perplexity after: {ppl_after:.3f}")
    generations = generate_texts(trained, tokenizer, cfg.generation)
    curves = {"finetune": stage.loss_history}
    if base_stage is not None:
        curves = {"base (other companies)": base_stage.loss_history, **curves}
    plot_loss_curves(curves, final / LOSS_CURVE, f"Causal LM fine-tune on {label}",
                     [f"held-out MD&A perplexity {ppl_before:.2f} -> {ppl_after:.2f}"])
    stages = {"finetune": {k: v for k, v in stage.to_dict().items() if k != "hyperparameters"}}
    if base_stage is not None:
        stages = {"base": {k: v for k, v in base_stage.to_dict().items() if k != "hyperparameters"}, **stages}
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "kind": "causal-lm",
        "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "company": {"cik": int(cfg.cik), "ticker": cfg.ticker or None},
        "base": {"name": cfg.base or "GPT-J architecture from config, pretrained on the other companies",
                 "path": str(base_dir), "identity": base_identity, "model_type": trained.config.model_type,
                 "parameters": count_parameters(trained),
                 "pretraining": None if base_stage is None else {
                     "run": base_key, "tokens_seen": base_stage.tokens_seen,
                     "hyperparameters": base_stage.hyperparameters, "scratch": dataclasses.asdict(cfg.scratch)}},
        "training_data": {"corpus_uri": cfg.corpus_uri, "company_sha256": corpus_sha256(company),
                          "data_versions": cfg.data_versions, "train_filings": sorted(set(train["accession"])),
                          "train_items": sorted(set(train["item"])), "eval_filings": sorted(set(held["accession"])),
                          "eval_items": eval_items, "train_blocks": int(len(train_blocks)),
                          "eval_blocks": int(len(eval_blocks))},
        "code_version": code_version(),
        "tokens_seen": stage.tokens_seen,
        "hyperparameters": {**stage.hyperparameters, "seq_len": cfg.seq_len},
        "metrics": {"perplexity_before": round(ppl_before, 4), "perplexity_after": round(ppl_after, 4),
                    "perplexity": "exp(mean next-token NLL) over the company's held-out MD&A",
                    "tokens_per_second": stage.tokens_per_second, "train_seconds": stage.train_seconds,
                    "final_train_loss": stage.loss_history[-1][1] if stage.loss_history else None},
        "generation": {**dataclasses.asdict(cfg.generation), "outputs": generations},
        "stages": stages,
        "loss_curve": LOSS_CURVE,
        "environment": environment_info(ds_config),
    }
    write_json(final / MANIFEST, manifest)
    publication = checkpoints.publish(final, version, ticket)
    info(publication.describe())
    run.cleanup(keep_final=False)
    return _summary(publication, manifest, reused=False)



def _summary(publication: Publication, manifest: dict, reused: bool) -> dict:
    return {**checkpoint_summary(publication, manifest, reused), "generations": manifest["generation"]["outputs"]}


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    with entry_point_session(__doc__.splitlines()[0], argv) as (raw, reporter):
        cfg = ClmFinetuneConfig.from_mapping(raw)
        summary = finetune_clm(cfg, logger=reporter.log)
        if summary is not None:
            reporter.report(summary, data_version=summary["version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
