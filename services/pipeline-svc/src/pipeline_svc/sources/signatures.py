"""Webhook authenticity, checked over the raw body before anything is parsed or stored. Constant-time compares."""

from __future__ import annotations

import hashlib
import hmac


def github_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(github_signature(secret, body).encode(), header.strip().encode("latin-1", "replace"))


def gitlab_token_valid(expected: str, header: str | None) -> bool:
    if not header or not expected:
        return False
    return hmac.compare_digest(expected.encode(), header.encode("latin-1", "replace"))
