"""Domain-adaptive masked-language-model pretraining on filing text (RoBERTa-SEC, done right).

Continues MLM pretraining of an encoder on ``filing_sections`` text: dynamic
masking (a fresh 15% mask every time a block is seen), no next-sentence
objective, documents packed into full-length blocks, and filings held out for a
before/after masked-token perplexity and accuracy. The default base is the
bundled all-MiniLM-L6-v2 encoder (a ``BertModel``), which gets a freshly
initialised MLM head; any local or object-store Hugging Face checkpoint works
too, as does ``base="scratch"``: a BERT of the configured size with a WordPiece
tokenizer trained on the corpus.

The baseline ("before") must measure the base encoder, not a random head: a fresh
head is first trained alone, encoder frozen, for ``head_warmup_steps`` on the
training filings, and everything is seeded, so the numbers repeat run to run.

The published directory loads with ``AutoModel`` and ``AutoModelForMaskedLM``,
and as a model directory for ``finsec_assets.ml.embeddings`` or
``SentenceTransformer`` (the base's sentence-transformers modules are kept, so
the pooling is the base's).

Run it by hand::

    python -m finsec_assets.ml.mlm_pretrain --set corpus_uri=corpus.parquet --set training.max_steps=50

or let the ``pretrained_checkpoint`` asset launch it through Dagster Pipes. The
settings are :class:`MlmPretrainConfig`.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .training import (
    CHECKPOINT_FORMAT,
    LOSS_CURVE,
    MANIFEST,
    CheckpointStore,
    Hyperparameters,
    TokenBlocks,
    TrainingInputError,
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
    eval_autocast,
    evaluation_device,
    fingerprint,
    load_tokenizer,
    minilm_path,
    model_identity,
    plot_loss_curves,
    process_rank,
    quiet_libraries,
    resolve_model_source,
    run_training_stage,
    sampled_token_blocks,
    select_deepspeed_config,
    split_by_filing,
    text_sample,
    training_blocks,
    write_json,
)

ASSET_NAME = "pretrained_checkpoint"
ENTRY_MODULE = "finsec_assets.ml.mlm_pretrain"
DEFAULT_BASE_NAME = "all-MiniLM-L6-v2"
# sentence-transformers files carried over from the base, so the checkpoint pools like its base
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


@dataclasses.dataclass
class ScratchEncoder:
    """A BERT built from a config, with a WordPiece tokenizer trained on the training filings."""

    vocab_size: int = 8000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    tokenizer_training_chars: int = 20_000_000


@dataclasses.dataclass
class MlmPretrainConfig:
    corpus_uri: str
    checkpoint_root: str = ""  # default: checkpoints/pretrained_checkpoint in the project's object store
    work_dir: str = ""  # local scratch for a remote checkpoint root (default FINSEC_HOME/work)
    base: str = ""  # "" = bundled all-MiniLM-L6-v2; "scratch"; or a path / file:// / s3:// model or checkpoint root
    items: list = dataclasses.field(default_factory=list)  # section items to train on; empty = all
    seq_len: int = 128
    mlm_probability: float = 0.15
    eval_fraction: float = 0.1
    split_seed: int = 0
    # 0 = as many as the training steps (steps x batch x accumulation x processes) and the head warm-up consume
    max_train_blocks: int = 0
    max_eval_blocks: int = 64  # 0 = every held-out section (memory then grows with the corpus)
    eval_batch_size: int = 16
    # the baseline: a fresh MLM head is first trained alone (encoder frozen) on the training split, so
    # "before" measures the base encoder, not a random head; 0 = no warm-up (before = the random head)
    head_warmup_steps: int = 60
    head_warmup_learning_rate: float = 2e-3
    scratch: ScratchEncoder = dataclasses.field(default_factory=ScratchEncoder)
    training: Hyperparameters = dataclasses.field(
        default_factory=lambda: Hyperparameters(learning_rate=1e-4, max_steps=60, save_steps=20)
    )
    deepspeed: str = "auto"  # auto | off | zero2 | zero3_offload | path to a JSON config
    attn_implementation: str = ""  # "" = the library default (SDPA for BERT/RoBERTa)
    data_versions: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: dict) -> MlmPretrainConfig:
        cfg = config_from(cls, raw, "mlm_pretrain config")
        cfg.training.validate("mlm_pretrain config.training")
        if cfg.seq_len < 8:
            raise TrainingInputError(f"mlm_pretrain config.seq_len={cfg.seq_len}: use at least 8 tokens")
        if not 0 < cfg.mlm_probability < 1:
            raise TrainingInputError(f"mlm_pretrain config.mlm_probability={cfg.mlm_probability}: expected 0 < p < 1")
        if cfg.head_warmup_steps < 0 or cfg.head_warmup_learning_rate <= 0:
            raise TrainingInputError(
                f"mlm_pretrain config.head_warmup_steps={cfg.head_warmup_steps}, head_warmup_learning_rate="
                f"{cfg.head_warmup_learning_rate}: expected steps >= 0 and a positive learning rate")
        return cfg

    def fingerprint_fields(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("corpus_uri", "checkpoint_root", "work_dir", "data_versions", "base"):
            d.pop(k)
        d["training"].pop("logging_steps")
        d["training"].pop("save_steps")
        if self.base != "scratch":
            d.pop("scratch")
        return d


class MaskingCollator:
    """Dynamic masking with a fixed number of predictions per block.

    Every time a block is batched, ``round(p * block_len)`` of its non-special positions are
    drawn afresh (BERT's 80% [MASK] / 10% random token / 10% unchanged). A fixed count keeps
    tensor shapes static (``torch.compile`` friendly) and lets the loss run the vocabulary
    projection on those positions only, not on all of them: the head of RoBERTa-base is a
    third of its matmul work. ``generator`` fixes the masks (evaluation); without it the global
    RNG is used, which the Trainer checkpoints, so a resumed run masks as the uninterrupted one.
    """

    def __init__(self, mask_token_id: int, vocab_size: int, mlm_probability: float = 0.15, generator=None):
        self.mask_id, self.vocab, self.p, self.generator = mask_token_id, vocab_size, mlm_probability, generator

    @classmethod
    def for_tokenizer(cls, tokenizer, mlm_probability: float = 0.15, generator=None) -> MaskingCollator:
        return cls(tokenizer.mask_token_id, len(tokenizer), mlm_probability, generator)

    def __call__(self, examples: Sequence[dict]) -> dict:
        import torch

        ids = torch.stack([e["input_ids"] for e in examples])
        special = torch.stack([e["special_tokens_mask"] for e in examples]).bool()
        n, length = ids.shape
        k = max(1, round(self.p * length))
        g = self.generator
        score = torch.rand(n, length, generator=g) + special.float() * 2  # specials only if nothing else is left
        positions = score.topk(k, dim=1, largest=False).indices.sort(dim=1).values
        labels = ids.gather(1, positions)
        labels = labels.masked_fill(special.gather(1, positions), -100)
        roll = torch.rand(n, k, generator=g)
        replaced = torch.where(roll < 0.8, torch.full_like(labels, self.mask_id),
                               torch.where(roll < 0.9, torch.randint(self.vocab, labels.shape, generator=g), labels))
        replaced = torch.where(labels == -100, ids.gather(1, positions), replaced)
        corrupted = ids.scatter(1, positions, replaced)
        return {"input_ids": corrupted, "attention_mask": torch.ones_like(ids), "mlm_positions": positions,
                "mlm_labels": labels}


def _mlm_head(model):
    """The module mapping encoder states to vocabulary logits, where the architecture has one."""
    for name in ("cls", "lm_head"):  # BERT family; RoBERTa, XLM-R, CamemBERT, ...
        head = getattr(model, name, None)
        if head is not None and hasattr(model, model.base_model_prefix):
            return head
    return None


def masked_position_logits(model, input_ids, attention_mask, positions):
    """Logits at ``positions`` only (B, k, V); falls back to the full forward for unknown heads."""
    head = _mlm_head(model)
    if head is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.gather(1, positions[..., None].expand(-1, -1, logits.size(-1)))
    hidden = getattr(model, model.base_model_prefix)(input_ids=input_ids, attention_mask=attention_mask)[0]
    picked = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.size(-1)))
    return head(picked)


def use_masked_position_loss(model):
    """Make ``model(mlm_positions=..., mlm_labels=...)`` return the loss over masked positions only.

    Bound on the instance, so DDP, DeepSpeed and torch.compile call it as the model's forward
    while the class (and what ``save_pretrained`` writes) stays the library's own.
    """
    import types

    import torch.nn.functional as F
    from transformers.modeling_outputs import MaskedLMOutput

    library_forward = type(model).forward

    def forward(self, input_ids=None, attention_mask=None, mlm_positions=None, mlm_labels=None, **kwargs):
        if mlm_positions is None:
            return library_forward(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        logits = masked_position_logits(self, input_ids, attention_mask, mlm_positions)
        loss = F.cross_entropy(logits.float().flatten(0, 1), mlm_labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(loss=loss)

    model.forward = types.MethodType(forward, model)
    return model


def masked_lm_scores(model, tokenizer, blocks, *, mlm_probability: float = 0.15, seed: int = 1234,
                     batch_size: int = 16, device: str | None = None) -> dict:
    """Held-out masked-token perplexity, exp(mean NLL of the masked tokens), and top-1 accuracy at
    those positions, with the same seeded masks every call, so a before/after pair scores the same
    predictions."""
    import math

    import torch
    import torch.nn.functional as F

    if len(blocks) == 0:
        raise TrainingInputError("perplexity needs at least one block of held-out text")
    collate = MaskingCollator.for_tokenizer(tokenizer, mlm_probability, generator=torch.Generator().manual_seed(seed))
    dataset = TokenBlocks(blocks, tokenizer.all_special_ids)
    total, count, correct = 0.0, 0, 0
    with evaluation_device(model, device) as dev, torch.inference_mode():
        for i in range(0, len(dataset), batch_size):
            batch = collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
            batch = {k: v.to(dev) for k, v in batch.items()}
            with eval_autocast(dev):
                logits = masked_position_logits(model, batch["input_ids"], batch["attention_mask"], batch["mlm_positions"])
            logits, labels = logits.float().flatten(0, 1), batch["mlm_labels"].flatten()
            scored = labels != -100
            total += float(F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum"))
            count += int(scored.sum())
            correct += int((logits.argmax(-1) == labels)[scored].sum())
    if count == 0:
        raise TrainingInputError("held-out text produced no maskable tokens")
    return {"perplexity": math.exp(total / count), "accuracy": correct / count, "masked_tokens": count}


def warm_up_head(model, tokenizer, blocks, trainable: Sequence[str], *, steps: int, learning_rate: float,
                 batch_size: int, mlm_probability: float = 0.15, seed: int = 0,
                 device: str | None = None) -> list[tuple[int, float]]:
    """Train only the parameters named in ``trainable`` (a fresh MLM head) for ``steps`` AdamW steps
    on seeded random batches of ``blocks``, the encoder frozen and in eval mode (a probe of what
    the base encoder already knows). Returns the loss per step; the other parameters are untouched."""
    import torch
    import torch.nn.functional as F

    head = _mlm_head(model)
    params = dict(model.named_parameters())
    names = [n for n in trainable if n in params]
    if head is None or not names or steps <= 0 or len(blocks) == 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    collate = MaskingCollator.for_tokenizer(tokenizer, mlm_probability, generator=generator)
    dataset = TokenBlocks(blocks, tokenizer.all_special_ids)
    flags = {n: p.requires_grad for n, p in params.items()}
    for n, p in params.items():
        p.requires_grad_(n in names)
    optimizer = torch.optim.AdamW([params[n] for n in names], lr=learning_rate, weight_decay=0.0)
    encoder = getattr(model, model.base_model_prefix)
    history = []
    try:
        with evaluation_device(model, device) as dev:
            for step in range(1, steps + 1):
                rows = torch.randint(len(dataset), (batch_size,), generator=generator).tolist()
                batch = {k: v.to(dev) for k, v in collate([dataset[i] for i in rows]).items()}
                with torch.no_grad(), eval_autocast(dev):
                    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
                positions = batch["mlm_positions"]
                picked = hidden.float().gather(1, positions[..., None].expand(-1, -1, hidden.size(-1)))
                logits = head(picked)
                loss = F.cross_entropy(logits.float().flatten(0, 1), batch["mlm_labels"].flatten(), ignore_index=-100)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                history.append((step, float(loss.detach())))
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
    return history


def train_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int, max_chars: int, model_max_length: int):
    """A BERT-style uncased WordPiece tokenizer learned from the corpus (no hub download)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(text_sample(texts, max_chars), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length,
    )


def check_fresh_head(model, loading_info: dict, base_dir: Path) -> list[str]:
    """The MLM head parameters initialised here; refuses a base whose encoder weights are missing
    or a head left uninitialised."""
    import torch

    missing = sorted(loading_info.get("missing_keys") or [])
    prefix = f"{model.base_model_prefix}."
    encoder_missing = [k for k in missing if k.startswith(prefix)]
    if encoder_missing:
        raise TrainingInputError(
            f"base model {str(base_dir)!r} lacks encoder weights {encoder_missing[:4]}"
            f"{' ...' if len(encoder_missing) > 4 else ''}: not a checkpoint of a {model.config.model_type} encoder"
        )
    params = dict(model.named_parameters())
    for name in missing:
        p = params.get(name)
        if p is None:
            continue
        if not bool(torch.isfinite(p).all()) or (p.dim() == 2 and float(p.detach().float().std()) == 0.0):
            raise RuntimeError(f"the fresh MLM head parameter {name} was not initialised (non-finite or constant)")
    if model.get_output_embeddings() is None:
        raise TrainingInputError(f"base model {str(base_dir)!r}: {type(model).__name__} has no output embeddings")
    return missing


def _copy_sentence_transformers_files(base_dir: Path | None, target: Path) -> list[str]:
    copied = []
    if base_dir is None or not (base_dir / "modules.json").is_file():
        return copied
    for name in SENTENCE_TRANSFORMERS_FILES:
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, target / name)
            copied.append(name)
    for d in base_dir.iterdir():  # 1_Pooling, 2_Normalize, ...
        if d.is_dir() and d.name[:1].isdigit() and "_" in d.name:
            shutil.copytree(d, target / d.name, dirs_exist_ok=True)
            copied.append(d.name + "/")
    return copied


def pretrain_mlm(cfg: MlmPretrainConfig, *, logger=None, callbacks: Sequence = ()) -> dict | None:
    """Run (or reuse) one MLM pretraining; returns the published checkpoint's summary (None on ranks > 0)."""
    import torch
    from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM, set_seed

    info = logger.info if logger is not None else (lambda *_: None)
    checkpoints = CheckpointStore(cfg.checkpoint_root or default_checkpoint_root(ASSET_NAME))
    ticket = checkpoints.reserve_ticket() if process_rank() == 0 else None  # this run's place in LATEST's order
    corpus = corpus_index(cfg.corpus_uri)  # one small row per section; the text stays in the file
    if cfg.items:
        corpus = corpus[corpus["item"].isin([str(i) for i in cfg.items])]
    if corpus.empty:
        raise TrainingInputError(f"training corpus {cfg.corpus_uri!r} has no non-empty sections"
                                 f"{' for items ' + str(cfg.items) if cfg.items else ''}")
    scratch = cfg.base == "scratch"
    base_dir = None if scratch else resolve_model_source(cfg.base or str(minilm_path()))
    base_name = "scratch" if scratch else (cfg.base or DEFAULT_BASE_NAME)
    corpus_hash = corpus_sha256(corpus)
    version = fingerprint({
        "kind": "masked-lm", "code": code_version(), "corpus": corpus_hash,
        "base": "scratch" if scratch else model_identity(base_dir), "config": cfg.fingerprint_fields(),
    })
    if checkpoints.is_published(version):
        info(f"checkpoint {version} already published for these inputs; pointing LATEST at it")
        if process_rank() != 0:
            return None
        publication = checkpoints.republish(version, ticket)
        info(publication.describe())
        return checkpoint_summary(publication, checkpoints.read_manifest(version), reused=True)

    train_acc, eval_acc = split_by_filing(corpus["accession"], cfg.eval_fraction, cfg.split_seed)
    train_rows = corpus[corpus["accession"].isin(train_acc)]
    eval_rows = corpus[corpus["accession"].isin(eval_acc)]
    info(f"corpus: {len(corpus)} sections of {corpus['accession'].nunique()} filings; "
         f"{len(train_acc)} train / {len(eval_acc)} held-out filings")
    del corpus

    set_seed(cfg.training.seed)  # the fresh head's (or scratch model's) initial weights
    if scratch:
        tokenizer = train_wordpiece_tokenizer(
            (text for _, text in corpus_texts(cfg.corpus_uri, train_rows["row"])), cfg.scratch.vocab_size, cfg.scratch.tokenizer_training_chars, cfg.seq_len
        )
        model_config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=cfg.scratch.hidden_size, num_hidden_layers=cfg.scratch.num_hidden_layers,
            num_attention_heads=cfg.scratch.num_attention_heads, intermediate_size=cfg.scratch.intermediate_size,
            max_position_embeddings=max(cfg.seq_len, 512), pad_token_id=tokenizer.pad_token_id,
        )
        if cfg.attn_implementation:
            model_config._attn_implementation = cfg.attn_implementation
        model = BertForMaskedLM(model_config)
        fresh_head = ["all parameters (from scratch)"]
        where = "scratch"
    else:
        tokenizer = load_tokenizer(base_dir)
        kwargs = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
        try:
            model, loading = AutoModelForMaskedLM.from_pretrained(
                str(base_dir), output_loading_info=True, dtype=torch.float32, **kwargs
            )
        except (OSError, ValueError) as exc:
            raise TrainingInputError(f"base model {str(base_dir)!r} cannot be loaded as a masked LM: {exc}") from exc
        fresh_head = check_fresh_head(model, loading, base_dir)
        where = str(base_dir)
        if fresh_head:
            info(f"fresh MLM head initialised: {fresh_head}")
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise TrainingInputError(f"tokenizer of {where!r} lacks mask/cls/sep tokens needed for MLM packing")
    check_tokenizer_matches_model(tokenizer, model.config, where, cfg.seq_len)

    cls_sep = dict(prefix=[tokenizer.cls_token_id], suffix=[tokenizer.sep_token_id], separator=[tokenizer.sep_token_id])
    # by default as many blocks as the steps consume, the head warm-up's included: bounded, whatever the corpus's size
    wanted = cfg.max_train_blocks or max(training_blocks(cfg.training),
                                         cfg.head_warmup_steps * cfg.training.per_device_batch_size)
    train_blocks, train_used = sampled_token_blocks(cfg.corpus_uri, train_rows, tokenizer, cfg.seq_len, wanted,
                                                    seed=cfg.split_seed, **cls_sep)
    eval_blocks, eval_used = sampled_token_blocks(cfg.corpus_uri, eval_rows, tokenizer, cfg.seq_len,
                                                  cfg.max_eval_blocks or None, seed=cfg.split_seed, **cls_sep)
    if len(eval_blocks) == 0:
        raise TrainingInputError(
            f"too little held-out text: filings {sorted(eval_acc)} ({int(eval_rows['chars'].sum())} characters) "
            f"give less than one block of {cfg.seq_len} tokens"
        )
    info(f"packed {len(train_blocks)} training blocks from {len(train_used)} of {len(train_rows)} sections and "
         f"{len(eval_blocks)} held-out blocks from {len(eval_used)} of {len(eval_rows)} sections, {cfg.seq_len} tokens each")

    score = dict(mlm_probability=cfg.mlm_probability, batch_size=cfg.eval_batch_size)
    nan = {"perplexity": float("nan"), "accuracy": float("nan")}
    fresh_scores, warmup_history = None, []
    head_warmup = bool(fresh_head) and not scratch and cfg.head_warmup_steps > 0
    if head_warmup:
        fresh_scores = masked_lm_scores(model, tokenizer, eval_blocks, **score) if process_rank() == 0 else nan
        info(f"held-out masked-token perplexity with the fresh, random head: {fresh_scores['perplexity']:.3f}")
        warmup_history = warm_up_head(
            model, tokenizer, train_blocks, fresh_head, steps=cfg.head_warmup_steps,
            learning_rate=cfg.head_warmup_learning_rate, batch_size=cfg.training.per_device_batch_size,
            mlm_probability=cfg.mlm_probability, seed=cfg.training.seed,
        )
        info(f"MLM head trained alone for {len(warmup_history)} steps (encoder frozen): "
             f"loss {warmup_history[0][1]:.3f} -> {warmup_history[-1][1]:.3f}" if warmup_history else
             "this architecture's MLM head cannot be trained alone; the baseline is the fresh head")
    before = masked_lm_scores(model, tokenizer, eval_blocks, **score) if process_rank() == 0 else nan
    ppl_before = before["perplexity"]
    info(f"held-out masked-token perplexity before: {ppl_before:.3f}, accuracy {before['accuracy']:.4f}")
    set_seed(cfg.training.seed)

    ds_config = select_deepspeed_config(cfg.deepspeed, count_parameters(model))
    run = checkpoints.run_state(version, cfg.work_dir or None)
    collator = MaskingCollator.for_tokenizer(tokenizer, cfg.mlm_probability)
    use_masked_position_loss(model)
    stage = run_training_stage(
        "mlm", model, tokenizer, TokenBlocks(train_blocks, tokenizer.all_special_ids), collator, cfg.training, run,
        deepspeed_config=ds_config, callbacks=callbacks, logger=logger,
    )
    del model
    if process_rank() != 0:
        return None

    final = run.final_dir
    trained = AutoModelForMaskedLM.from_pretrained(str(final), dtype=torch.float32)
    after = masked_lm_scores(trained, tokenizer, eval_blocks, **score)
    ppl_after = after["perplexity"]
    info(f"held-out masked-token perplexity after: {ppl_after:.3f}, accuracy {after['accuracy']:.4f}")
    st_files = _copy_sentence_transformers_files(base_dir, final)
    curves = {"mlm": stage.loss_history}
    if warmup_history:
        curves = {"head alone (encoder frozen)": warmup_history, **curves}
    plot_loss_curves(curves, final / LOSS_CURVE, f"MLM pretraining ({base_name})",
                     [f"held-out perplexity {ppl_before:.2f} -> {ppl_after:.2f}",
                      f"masked-token accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}"])
    if head_warmup and warmup_history:
        baseline = (f"the base encoder, frozen, with its fresh MLM head trained alone for {len(warmup_history)} steps "
                    "on the training filings (seeded)")
    elif fresh_head and not scratch:
        baseline = "the base with its freshly initialised MLM head (seeded random predictions)"
    else:
        baseline = "the model as loaded or initialised (seeded), before any training"
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "kind": "masked-lm",
        "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base": {"name": base_name, "path": None if base_dir is None else str(base_dir),
                 "identity": "scratch" if scratch else model_identity(base_dir), "fresh_parameters": fresh_head,
                 "model_type": trained.config.model_type, "parameters": count_parameters(trained)},
        "training_data": {"corpus_uri": cfg.corpus_uri, "corpus_sha256": corpus_hash, "data_versions": cfg.data_versions,
                          "train_filings": sorted(train_acc), "eval_filings": sorted(eval_acc),
                          "train_blocks": int(len(train_blocks)), "eval_blocks": int(len(eval_blocks)),
                          "items": list(cfg.items) or "all"},
        "code_version": code_version(),
        "tokens_seen": stage.tokens_seen,
        "hyperparameters": {**stage.hyperparameters, "seq_len": cfg.seq_len, "mlm_probability": cfg.mlm_probability,
                            "objective": "masked LM, dynamic masking (80/10/10, fixed count per block), no next-sentence loss, packed blocks"},
        "metrics": {"perplexity_before": round(ppl_before, 4), "perplexity_after": round(ppl_after, 4),
                    "masked_accuracy_before": round(before["accuracy"], 4),
                    "masked_accuracy_after": round(after["accuracy"], 4),
                    "perplexity_fresh_head": None if fresh_scores is None else round(fresh_scores["perplexity"], 4),
                    "masked_accuracy_fresh_head": None if fresh_scores is None else round(fresh_scores["accuracy"], 4),
                    "masked_tokens_scored": after["masked_tokens"],
                    "perplexity": "exp(mean NLL of masked held-out tokens), fixed seeded masks",
                    "masked_accuracy": "share of masked held-out positions whose top-1 prediction is the original token",
                    "before": baseline,
                    "head_warmup": {"steps": len(warmup_history), "learning_rate": cfg.head_warmup_learning_rate,
                                    "loss_first": warmup_history[0][1] if warmup_history else None,
                                    "loss_last": warmup_history[-1][1] if warmup_history else None},
                    "tokens_per_second": stage.tokens_per_second, "train_seconds": stage.train_seconds,
                    "final_train_loss": stage.loss_history[-1][1] if stage.loss_history else None},
        "stages": {"mlm": {k: v for k, v in stage.to_dict().items() if k != "hyperparameters"}},
        "loss_curve": LOSS_CURVE,
        "sentence_transformers_files": st_files,
        "environment": environment_info(ds_config),
    }
    write_json(final / MANIFEST, manifest)
    publication = checkpoints.publish(final, version, ticket)
    info(publication.describe())
    run.cleanup(keep_final=False)
    return checkpoint_summary(publication, manifest, reused=False)



def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    with entry_point_session(__doc__.splitlines()[0], argv) as (raw, reporter):
        cfg = MlmPretrainConfig.from_mapping(raw)
        summary = pretrain_mlm(cfg, logger=reporter.log)
        if summary is not None:
            reporter.report(summary, data_version=summary["version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
