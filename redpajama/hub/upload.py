"""Upload a built repo folder to the Hub with `huggingface_hub`, retrying transient failures.

The token comes from `HF_TOKEN` or the `hf auth login` store (`huggingface_hub.get_token()`). It is
passed to `HfApi` and nowhere else: every error that leaves this module is rebuilt from its message
with the token cut out, and without its cause chain, so no traceback or one-line error can show it.

`upload_folder` is the transfer: with `hf_xet` installed (the default) it streams the files through
Xet and commits in batches, and a rerun skips what already arrived (large folders resume); without
it (or with `HF_HUB_DISABLE_XET=1`) it makes one commit through the preupload / LFS batch / commit
API. Requests inside `huggingface_hub` already back off on 429/5xx; the loop here also retries the
calls it does not retry itself (repo creation, the commit) by running the idempotent upload again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redpajama.errors import UserError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_NAMES = frozenset({"TransportError", "TimeoutException", "NetworkError", "RemoteProtocolError"})
REDACTED = "hf_***"


class UploadError(UserError):
    """The Hub refused or failed the upload; the message never contains the token."""


@dataclass(frozen=True)
class UploadConfig:
    repo_id: str
    private: bool = False
    revision: str | None = None
    endpoint: str | None = None  # None: HF_ENDPOINT or https://huggingface.co
    retries: int = 5
    base_wait_s: float = 2.0
    max_wait_s: float = 60.0
    commit_message: str = "Publish dataset with redpajama"


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise UserError(
            "publishing needs huggingface_hub", "pip install 'redpajama[hub]', or use --dry-run DIR"
        ) from None
    return huggingface_hub


def resolve_token() -> str:
    token = _hub().get_token()
    if not token:
        raise UserError(
            "no Hugging Face token found", "set HF_TOKEN or run `hf auth login`; --dry-run DIR needs none"
        )
    return token


def redact(text: str, token: str) -> str:
    return text.replace(token, REDACTED) if token else text


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def retryable(exc: BaseException) -> bool:
    if _status(exc) in RETRY_STATUS:
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(cls.__name__ in TRANSIENT_NAMES for cls in type(exc).__mro__)


def _upload_once(folder: Path, config: UploadConfig, token: str) -> str:
    hub = _hub()
    api = hub.HfApi(endpoint=config.endpoint, token=token)
    api.create_repo(config.repo_id, repo_type="dataset", private=config.private, exist_ok=True)
    if config.revision and config.revision != "main":
        api.create_branch(config.repo_id, branch=config.revision, repo_type="dataset", exist_ok=True)
    info = api.upload_folder(
        repo_id=config.repo_id,
        folder_path=folder,
        repo_type="dataset",
        revision=config.revision,
        commit_message=config.commit_message,
    )
    return str(getattr(info, "commit_url", info))


def upload(
    folder: Path,
    config: UploadConfig,
    token: str,
    *,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create the dataset repo if needed and upload `folder`; returns the commit URL."""
    attempt = 0
    while True:
        try:
            return _upload_once(folder, config, token)
        except Exception as exc:  # noqa: BLE001 - every error is re-raised, token cut out
            message = redact(f"{type(exc).__name__}: {exc}", token)
            if attempt < config.retries and retryable(exc):
                wait = min(config.max_wait_s, config.base_wait_s * 2**attempt)
                if on_retry:
                    on_retry(f"{message.splitlines()[0]}; retrying in {wait:.0f}s")
                sleep(wait)
                attempt += 1
                continue
            error = UploadError(
                message,
                "check --repo-id and that the token may write there; rerun to resume the upload",
            )
        # Raised outside the except block so the original exception is not chained as context.
        raise error
