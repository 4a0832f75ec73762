"""Language-model domain: pretrained_checkpoint (MLM) and finetuned_checkpoint (causal LM), trained through Dagster Pipes."""
