"""Log-likelihood machinery every task shares: scoring continuations, rolling-window perplexity.

Follows lm-evaluation-harness (`HFLM._loglikelihood_tokens`, `HFLM._encode_pair`,
`utils.get_rolling_token_windows`), so our numbers mean what theirs mean:

- A request is `(context_tokens, continuation_tokens)`. The model reads the last `max_len + 1`
  tokens of `context + continuation` minus the final one (contexts are left-truncated, the
  continuation never is) and we sum `log p(token | everything before it)` over the continuation.
  An empty context means "condition on EOS only": `[eos_id]` becomes the context.
- Requests run longest first (a too-large batch fails at once, not at the end), right-padded with
  token 0, and come back in input order. Right padding is safe because the model is causal: pad
  positions sit after every scored position. Log-softmax runs in float32 whatever the logits dtype.
- Rolling perplexity cuts a token stream into windows whose scored tokens are disjoint and cover
  every token once; with `stride == max_len` the windows are lm-eval's `loglikelihood_rolling`.

A model is any callable `input_ids (B, T) -> logits (B, T, V)`; an `nn.Module` is put in eval mode
for the call and restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch

from redpajama.errors import UserError

Request = tuple[list[int], list[int]]
Model = Callable[[torch.Tensor], torch.Tensor]
PAD_ID = 0  # any id works: right padding is never attended to by a scored position
FLOAT32_BUDGET = 1 << 26  # logits elements upcast to float32 at once (256 MiB)


class TokenizerLike(Protocol):
    eos_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...


def encode_pairs(tokenizer: TokenizerLike, pairs: Sequence[tuple[str, str]]) -> list[Request]:
    """Tokenize `(context, continuation)` strings the way lm-eval's `_encode_pair` does.

    Trailing whitespace of the context moves to the front of the continuation; the continuation's
    tokens are those of `encode(context + continuation)` past `len(encode(context))`, so a token
    merged across the seam counts as continuation. An empty context becomes `[eos_id]` and the
    continuation is encoded alone.
    """
    contexts: list[str] = []
    continuations: list[str] = []
    for context, continuation in pairs:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        contexts.append(context)
        continuations.append(continuation)
    # Two batched calls for the pairs with a context, one for those without.
    with_context = [i for i, context in enumerate(contexts) if context]
    wholes = iter(tokenizer.encode_batch([contexts[i] + continuations[i] for i in with_context]))
    context_encs = iter(tokenizer.encode_batch([contexts[i] for i in with_context]))
    bare_encs = iter(
        tokenizer.encode_batch(
            [cont for context, cont in zip(contexts, continuations, strict=True) if not context]
        )
    )
    requests: list[Request] = []
    for context in contexts:
        if context:
            whole, context_enc = next(wholes), list(next(context_encs))
            requests.append((context_enc, list(whole[len(context_enc) :])))
        else:
            requests.append(([tokenizer.eos_id], list(next(bare_encs))))
    return requests


def loglikelihoods(
    model: Model,
    requests: Sequence[Request],
    *,
    max_len: int,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    eos_id: int | None = None,
) -> list[tuple[float, bool]]:
    """`(sum log p(continuation | context), continuation is the greedy argmax)` per request.

    `max_len` is the model's input length: the continuation must fit in it (a longer one cannot be
    scored whole and is an error); the context keeps its last `max_len - len(continuation)` tokens,
    at least one. An empty context needs `eos_id` (it is conditioned on EOS alone). An empty
    continuation scores `(0.0, True)` without running the model.
    """
    _check_positive(max_len=max_len, batch_size=batch_size)
    windows = [_scoring_window(context, cont, max_len, eos_id) for context, cont in requests]
    results: list[tuple[float, bool]] = [(0.0, True)] * len(windows)
    to_run = [i for i, (_, continuation) in enumerate(windows) if continuation]
    to_run.sort(key=lambda i: -len(windows[i][0]))  # stable: equal lengths keep input order
    with evaluating(model), torch.inference_mode():
        for start in range(0, len(to_run), batch_size):
            chunk = to_run[start : start + batch_size]
            batch = [windows[i] for i in chunk]
            for i, result in zip(chunk, _score_batch(model, batch, device), strict=True):
                results[i] = result
    return results


def rolling_windows(n: int, *, max_len: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows `(start, first_scored, end)` over a sequence of `n` tokens, as index ranges.

    Window k feeds tokens `[start, end - 1)` and scores the targets `[first_scored, end)`. The
    scored ranges tile `[1, n)`: every token but the first is scored exactly once. The first window
    scores all its `min(n, max_len + 1) - 1` targets; each later one advances `stride` tokens and
    keeps `max_len` tokens of input, so a scored token sees between `max_len + 1 - stride` and
    `max_len` tokens of context (fewer only near the start of the sequence).
    """
    _check_positive(max_len=max_len, stride=stride)
    if stride > max_len:
        raise UserError(f"stride {stride} is larger than max_len {max_len}", hint="use stride <= max_len")
    if n < 2:
        return []
    end = min(n, max_len + 1)
    windows = [(0, 1, end)]
    while end < n:
        new_end = min(n, end + stride)
        windows.append((max(0, new_end - max_len - 1), end, new_end))
        end = new_end
    return windows


def rolling_nll(
    model: Model,
    tokens: list[int],
    *,
    max_len: int,
    stride: int | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    eos_id: int | None = None,
) -> tuple[float, int]:
    """`(total negative log-likelihood, number of tokens scored)` of one token stream.

    Sliding windows of `max_len` input tokens advance by `stride` (default `max_len // 2`) and
    each token is scored once (see `rolling_windows`). With `eos_id` the stream is conditioned on
    EOS, so its first token is scored too and `n_scored == len(tokens)` (lm-eval's convention);
    without it the first token is context only. `stride == max_len` gives lm-eval's
    `loglikelihood_rolling` windows exactly; a smaller stride gives each token more context.
    """
    return rolling_nll_many(
        model, [tokens], max_len=max_len, stride=stride, batch_size=batch_size, device=device, eos_id=eos_id
    )[0]


def rolling_nll_many(
    model: Model,
    streams: Sequence[list[int]],
    *,
    max_len: int,
    stride: int | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    eos_id: int | None = None,
) -> list[tuple[float, int]]:
    """`rolling_nll` of several streams at once, so short documents share batches."""
    stride = max_len // 2 if stride is None else stride
    _check_positive(max_len=max_len, stride=stride)
    requests: list[Request] = []
    owners: list[int] = []
    for owner, tokens in enumerate(streams):
        sequence = ([eos_id] if eos_id is not None else []) + list(tokens)
        for start, first_scored, end in rolling_windows(len(sequence), max_len=max_len, stride=stride):
            requests.append((sequence[start:first_scored], sequence[first_scored:end]))
            owners.append(owner)
    scores = loglikelihoods(model, requests, max_len=max_len, batch_size=batch_size, device=device)
    totals = [0.0] * len(streams)
    counts = [0] * len(streams)
    for owner, (_, continuation), (logprob, _) in zip(owners, requests, scores, strict=True):
        totals[owner] -= logprob
        counts[owner] += len(continuation)
    return list(zip(totals, counts, strict=True))


def forward_logits(model: Model, input_ids: torch.Tensor) -> torch.Tensor:
    """Call the model and check it returned `(B, T, V)` logits for `(B, T)` ids."""
    logits = model(input_ids)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"the model returned {type(logits).__name__}, expected a logits tensor (B, T, V)")
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(input_ids.shape):
        raise ValueError(
            f"the model returned logits of shape {tuple(logits.shape)} for input_ids of shape "
            f"{tuple(input_ids.shape)}; expected (B, T, V) = ({input_ids.shape[0]}, {input_ids.shape[1]}, V)"
        )
    return logits


def target_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`log p(target)` and whether the target is the argmax, for N scored positions.

    `logits` is `(N, V)` in any dtype, or `(M, V)` with `rows` `(N,)` picking the N scored rows out
    of it. Log-softmax runs in float32 on at most `FLOAT32_BUDGET` elements at a time, so a bf16
    `(B, T, V)` batch never gets a float32 copy in full (16 x 2048 x 50k would be 6.6 GB).
    """
    step = max(1, FLOAT32_BUDGET // logits.shape[-1])
    picked: list[torch.Tensor] = []
    is_argmax: list[torch.Tensor] = []
    for start in range(0, len(targets), step):
        chosen = slice(start, start + step)
        scores = (logits[chosen] if rows is None else logits[rows[chosen]]).float()
        wanted = targets[chosen]
        picked.append(scores.gather(-1, wanted[:, None]).squeeze(-1) - torch.logsumexp(scores, dim=-1))
        is_argmax.append(scores.argmax(dim=-1) == wanted)
    if not picked:
        return logits.new_zeros(0, dtype=torch.float32), targets.new_zeros(0, dtype=torch.bool)
    return torch.cat(picked), torch.cat(is_argmax)


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """Eval mode (dropout off) for an `nn.Module` while scoring; its training mode comes back after."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _scoring_window(
    context: list[int], continuation: list[int], max_len: int, eos_id: int | None
) -> tuple[list[int], list[int]]:
    # -> (model input, continuation); the input's last len(continuation) positions predict it.
    if not continuation:
        return [], []
    if not context:
        if eos_id is None:
            raise ValueError("a request has an empty context; pass eos_id to condition it on EOS")
        context = [eos_id]
    if len(continuation) > max_len:
        raise UserError(
            f"a continuation of {len(continuation)} tokens does not fit the model input of {max_len} tokens",
            hint="raise max_len (the model's sequence length) or shorten the benchmark item",
        )
    whole = (list(context) + list(continuation))[-(max_len + 1) :]
    return whole[:-1], list(continuation)


def _score_batch(
    model: Model, batch: list[tuple[list[int], list[int]]], device: str | torch.device
) -> list[tuple[float, bool]]:
    width = max(len(inputs) for inputs, _ in batch)
    ids = torch.full((len(batch), width), PAD_ID, dtype=torch.long)
    owners: list[int] = []  # batch row of each scored position
    positions: list[int] = []  # flat index (row * width + column) of the logits that predict it
    for row, (inputs, continuation) in enumerate(batch):
        ids[row, : len(inputs)] = torch.tensor(inputs, dtype=torch.long)
        end = len(inputs)
        owners.extend([row] * len(continuation))
        positions.extend(range(row * width + end - len(continuation), row * width + end))
    targets = [token for _, continuation in batch for token in continuation]
    logits = forward_logits(model, ids.to(device))
    on_device = logits.device
    owner_index = torch.tensor(owners, dtype=torch.long, device=on_device)
    logprobs, is_argmax = target_logprobs(
        logits.reshape(-1, logits.shape[-1]),
        torch.tensor(targets, dtype=torch.long, device=on_device),
        rows=torch.tensor(positions, dtype=torch.long, device=on_device),
    )
    # Per-request sums in one scatter, then one device-to-host copy for the whole batch.
    sums = torch.zeros(len(batch), dtype=torch.float64, device=on_device).index_add_(
        0, owner_index, logprobs.double()
    )
    misses = torch.zeros(len(batch), dtype=torch.long, device=on_device).index_add_(
        0, owner_index, (~is_argmax).long()
    )
    return list(zip(sums.tolist(), (misses == 0).tolist(), strict=True))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
