"""One training stage: the Hugging Face ``Trainer`` with the project's arguments.

Checkpoints every ``save_steps``, resumed from the last complete one when a run is repeated, and
DeepSpeed (ZeRO-2, or ZeRO-3 with the optimizer offloaded to CPU) from the JSON configs in
``ml/deepspeed_configs/`` whenever CUDA is present and ``deepspeed`` imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .checkpoints import STAGE_DONE, RunState
from .config import DEEPSPEED_CONFIG_DIR, TrainingInputError
from .packing import TokenBlocks, require_one_batch


@dataclasses.dataclass
class Hyperparameters:
    """Optimizer and schedule of one training stage (the Trainer's arguments that matter)."""

    max_steps: int = 60
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 5
    save_steps: int = 20
    precision: str = "auto"  # auto: bf16 on a CUDA GPU that has it, else fp32; or fp32 | bf16 | fp16
    torch_compile: str = "auto"  # auto: on CUDA unless ZeRO-3; or "on" | "off"
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch_fused"

    def validate(self, where: str) -> None:
        for name in ("max_steps", "per_device_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps"):
            if int(getattr(self, name)) < 1:
                raise TrainingInputError(f"{where}.{name}={getattr(self, name)}: must be at least 1")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise TrainingInputError(f"{where}.precision={self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.torch_compile not in ("auto", "on", "off"):
            raise TrainingInputError(f"{where}.torch_compile={self.torch_compile!r}: use auto, on or off")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainingInputError(f"{where}.warmup_ratio={self.warmup_ratio}: expected 0 <= ratio < 1")


@dataclasses.dataclass
class StageResult:
    """What one training stage did; ``tokens_per_second`` counts this process's steps only."""

    name: str
    global_step: int
    resumed_from_step: int
    tokens_per_step: int
    tokens_seen: int
    train_seconds: float
    tokens_per_second: float
    loss_history: list[tuple[int, float]]
    hyperparameters: dict
    deepspeed: str | None
    reused: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StageResult:
        d = dict(d)
        d["loss_history"] = [tuple(x) for x in d.get("loss_history", [])]
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def training_blocks(hp: Hyperparameters) -> int:
    """The blocks ``hp.max_steps`` optimizer steps consume once each (batch x accumulation x processes a
    step): the training set a run needs, whatever the corpus's size."""
    return hp.max_steps * hp.per_device_batch_size * hp.gradient_accumulation_steps * world_size()


def process_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def select_deepspeed_config(choice: str, n_parameters: int) -> Path | None:
    """The DeepSpeed JSON config for a run, or None for plain PyTorch.

    ``auto`` uses DeepSpeed whenever CUDA is present and ``deepspeed`` imports: ZeRO-2 when a full
    fine-tune (~16 bytes per parameter: bf16 weights and gradients, fp32 master and Adam moments)
    fits in 60% of one GPU, else ZeRO-3 with the optimizer offloaded to CPU. ``off``; ``zero2``;
    ``zero3_offload``; or a path to a JSON config.
    """
    choice = (choice or "auto").strip()
    if choice == "off":
        return None
    have_deepspeed = importlib.util.find_spec("deepspeed") is not None
    if choice == "auto":
        import torch

        if not (torch.cuda.is_available() and have_deepspeed):
            return None
        gpu_bytes = torch.cuda.get_device_properties(0).total_memory
        name = "zero2" if 16 * n_parameters <= 0.6 * gpu_bytes else "zero3_offload"
        return DEEPSPEED_CONFIG_DIR / f"{name}.json"
    path = DEEPSPEED_CONFIG_DIR / f"{choice}.json" if "/" not in choice and not choice.endswith(".json") else Path(choice)
    if not path.is_file():
        known = sorted(p.stem for p in DEEPSPEED_CONFIG_DIR.glob("*.json"))
        raise TrainingInputError(f"deepspeed={choice!r}: no such config (use auto, off, {', '.join(known)} or a JSON path)")
    if not have_deepspeed:
        raise TrainingInputError(f"deepspeed={choice!r} requested but the deepspeed package is not installed")
    return path


def deepspeed_zero_stage(config: Path) -> int:
    return int(json.loads(Path(config).read_text()).get("zero_optimization", {}).get("stage", 0))


def _precision(hp: Hyperparameters) -> str:
    import torch

    if hp.precision != "auto":
        return hp.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def training_arguments(hp: Hyperparameters, output_dir: Path, deepspeed_config: Path | None):
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    precision = _precision(hp)
    # ZeRO-2 engines compile through accelerate's engine.compile(); ZeRO-3's gather hooks do not compile well
    compile_ = hp.torch_compile == "on" or (
        hp.torch_compile == "auto" and cuda and (deepspeed_config is None or deepspeed_zero_stage(deepspeed_config) < 3)
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=hp.max_steps,
        per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        warmup_steps=float(hp.warmup_ratio) if hp.warmup_ratio else 0,
        lr_scheduler_type=hp.lr_scheduler,
        max_grad_norm=hp.max_grad_norm,
        seed=hp.seed,
        data_seed=hp.seed,
        logging_steps=hp.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=hp.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        use_cpu=not cuda,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        optim=hp.optimizer,
        torch_compile=compile_,
        activation_checkpointing=hp.gradient_checkpointing,
        dataloader_num_workers=0,
        dataloader_drop_last=True,
        dataloader_pin_memory=cuda,
        remove_unused_columns=False,
        deepspeed=str(deepspeed_config) if deepspeed_config else None,
    )


def _trainer_callbacks(stage: str, run: RunState, logger: logging.Logger | None):
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Stage progress to the run's logger (the Dagster log under Pipes), and remote mirroring."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logger is not None and state.is_world_process_zero and logs:
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
                logger.info(f"{stage}: step {state.global_step}/{state.max_steps} {shown}")

        def on_step_end(self, args, state, control, **kwargs):
            # The Trainer also checkpoints the last step; the final model is saved right after anyway,
            # and skipping that write spares a full optimizer state (tens of GB for a 6B model).
            if state.global_step >= state.max_steps and state.global_step % args.save_steps:
                control.should_save = False

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero and run.remote is not None:
                run.mirror(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    return [ReportProgress()]


def run_training_stage(
    name: str,
    model,
    tokenizer,
    dataset: TokenBlocks,
    collator: Callable,
    hp: Hyperparameters,
    run: RunState,
    *,
    deepspeed_config: Path | None = None,
    callbacks: Sequence = (),
    logger: logging.Logger | None = None,
    save_final: bool = True,
) -> StageResult:
    """Train ``model`` for ``hp.max_steps`` optimizer steps on ``dataset``, resuming from the
    run's last complete checkpoint; the final model and tokenizer land in ``run.final_dir``
    (unless ``save_final`` is off, for throughput measurements)."""
    from transformers import PrinterCallback, Trainer

    if run.final_ready():
        done = json.loads((run.final_dir / STAGE_DONE).read_text())
        if logger is not None:
            logger.info(f"{name}: already trained to step {done.get('global_step')} in {run.final_dir}; reusing it")
        return StageResult.from_dict({**done, "reused": True})
    block_len = int(dataset.blocks.shape[1])
    batch_blocks = hp.per_device_batch_size * hp.gradient_accumulation_steps * world_size()
    require_one_batch(len(dataset), batch_blocks, f"the {name} training text", block_len, int(dataset.blocks.size))
    if deepspeed_config is not None:
        single_process_distributed_env()
    args = training_arguments(hp, run.work_dir, deepspeed_config)
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=tokenizer,
        callbacks=[*_trainer_callbacks(name, run, logger), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the run's logger, stdout stays clean
    resume = run.restore()
    resumed_from = int(resume.name.split("-")[-1]) if resume else 0
    if logger is not None and resume:
        logger.info(f"{name}: resuming from {resume} (step {resumed_from})")
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    step = int(trainer.state.global_step)
    tokens_per_step = batch_blocks * block_len
    history = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    if save_final:
        trainer.save_model(str(run.final_dir))
        (run.final_dir / "training_args.bin").unlink(missing_ok=True)
    result = StageResult(
        name=name, global_step=step, resumed_from_step=resumed_from, tokens_per_step=tokens_per_step,
        tokens_seen=step * tokens_per_step, train_seconds=round(seconds, 3),
        tokens_per_second=round((step - resumed_from) * tokens_per_step / max(seconds, 1e-9), 1),
        loss_history=history, hyperparameters=dataclasses.asdict(hp),
        deepspeed=deepspeed_config.name if deepspeed_config else None,
    )
    if save_final and trainer.is_world_process_zero():
        run.mark_final(result.to_dict())
    _release(trainer)
    del trainer
    _collect()
    barrier()
    return result


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def single_process_distributed_env() -> None:
    """DeepSpeed initialises torch.distributed even for one process; a plain ``python -m`` launch
    (no torchrun/deepspeed launcher) gets the variables a launcher would have set."""
    import socket

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", str(port))):
        os.environ.setdefault(key, value)


def _release(trainer) -> None:
    """Drop the optimizer, scheduler and (DeepSpeed) engine references the Trainer holds."""
    trainer.optimizer = trainer.lr_scheduler = None
    with contextlib.suppress(Exception):
        trainer.accelerator.free_memory()


def _collect() -> None:
    """Return GPU memory (and offloaded optimizer state) before the final model is reloaded."""
    import gc

    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
