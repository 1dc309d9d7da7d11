"""The trainer: AdamW with warmup + cosine, clipping, bf16 autocast, FSDP2, exact resume, JSONL metrics."""
