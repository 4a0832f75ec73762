"""What the two language-model training entry points share, one concern per module.

``mlm_pretrain`` (domain-adaptive masked-LM pretraining) and ``clm_finetune`` (causal-LM
fine-tuning on one company) differ in objective and data selection; everything else lives here,
callable from a notebook with plain Python objects:

* :mod:`.corpus`: the training corpus (a Parquet file of ``filing_sections`` rows, written from
  the lake in streamed batches) and held-out splits by filing;
* :mod:`.packing`: tokenising and packing into full-length blocks;
* :mod:`.selection`: the blocks a run trains and evaluates on, read from a corpus file of any size in
  memory bounded by those blocks (an index of the sections, then only the chosen sections' text);
* :mod:`.models`: base models from a directory, an object-store URI or a checkpoint root;
* :mod:`.evaluation`: held-out perplexity, computed here;
* :mod:`.trainer`: one training stage (Hugging Face Trainer, resumable, DeepSpeed on CUDA);
* :mod:`.checkpoints`: publishing under fresh prefixes and a ``LATEST`` pointer that never moves
  backwards, and resumable run state in the object store;
* :mod:`.config`: config dataclasses from mappings, fingerprints and the code version;
* :mod:`.reporting` and :mod:`.launch`: the loss curve, the run's result through Dagster Pipes,
  and the launch command.

Versions are content addressed: the version name is a hash of the code, the corpus, the base
model and the hyperparameters, so repeating a finished run republishes the stored checkpoint
instead of training again. torch and transformers are imported inside functions, so the Dagster
code location can import the launcher helpers without loading them. The Dagster-shaped metadata
of a checkpoint lives with the assets, in ``finsec_assets.defs.language_models.metadata``.
"""

from .checkpoints import (CHECKPOINT_FORMAT, LOSS_CURVE, MANIFEST, POINTER, STAGE_DONE, TICKETS,
                          CheckpointPublishError, CheckpointStore, Publication, RunState, checkpoint_summary,
                          default_checkpoint_root, finsec_home, last_complete_checkpoint, parse_pointer)
from .config import (DEEPSPEED_CONFIG_DIR, TrainingInputError, code_version, config_from, deep_merge, fingerprint,
                     parse_overrides)
from .corpus import (CORPUS_COLUMNS, MDNA_ITEMS, CorpusFile, corpus_batches, corpus_parquet_bytes, corpus_query, corpus_sha256,
                     read_corpus, split_by_filing, text_sample, write_corpus, write_corpus_batches)
from .evaluation import causal_lm_perplexity, eval_autocast, evaluation_device
from .launch import FAILURE_PREFIX, entry_point_session, launch_command, quiet_libraries, visible_gpu_count
from .models import (check_tokenizer_matches_model, count_parameters, load_tokenizer, minilm_path, model_identity,
                     resolve_model_source)
from .packing import TokenBlocks, causal_lm_collate, pack_token_blocks, require_one_batch, tokenize_documents
from .selection import corpus_index, corpus_texts, ranked, sampled_token_blocks
from .reporting import SUMMARY_KEY, RunReporter, environment_info, plot_loss_curves, write_json
from .trainer import (Hyperparameters, StageResult, barrier, deepspeed_zero_stage, process_rank, run_training_stage,
                      select_deepspeed_config, single_process_distributed_env, training_arguments, training_blocks,
                      world_size)

__all__ = [
    "CHECKPOINT_FORMAT", "CORPUS_COLUMNS", "DEEPSPEED_CONFIG_DIR", "FAILURE_PREFIX", "LOSS_CURVE", "MANIFEST",
    "MDNA_ITEMS", "POINTER", "STAGE_DONE", "SUMMARY_KEY", "TICKETS",
    "CheckpointPublishError", "CheckpointStore", "CorpusFile", "Hyperparameters", "Publication", "RunReporter", "RunState",
    "StageResult", "TokenBlocks", "TrainingInputError",
    "barrier", "causal_lm_collate", "causal_lm_perplexity", "check_tokenizer_matches_model", "checkpoint_summary",
    "code_version", "config_from", "corpus_batches", "corpus_index", "corpus_texts", "corpus_parquet_bytes", "corpus_query", "corpus_sha256", "count_parameters", "deep_merge",
    "deepspeed_zero_stage", "default_checkpoint_root", "entry_point_session", "environment_info", "eval_autocast",
    "evaluation_device", "finsec_home", "fingerprint", "last_complete_checkpoint", "launch_command", "load_tokenizer",
    "minilm_path", "model_identity", "pack_token_blocks", "parse_overrides", "parse_pointer", "plot_loss_curves",
    "process_rank", "quiet_libraries", "ranked", "read_corpus", "require_one_batch", "resolve_model_source",
    "run_training_stage", "sampled_token_blocks", "select_deepspeed_config", "single_process_distributed_env", "split_by_filing",
    "text_sample", "tokenize_documents", "training_arguments", "training_blocks", "visible_gpu_count", "world_size", "write_corpus",
    "write_corpus_batches", "write_json",
]
