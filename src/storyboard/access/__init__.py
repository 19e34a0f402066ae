"""Who may do what: API tokens, the principal a request acts as, share links, signed links.

    tokens.py     API tokens: create (shown once, kept as a SHA-256), list, revoke, look up
    principal.py  the principal a request acts as, and what it may do with a job (pure rules)
    shares.py     share links: a reviewer's read-only way into one board, without a token
    limits.py     limits per owner: jobs running at once, submissions per minute
    signing.py    signed, expiring links to one job's files and events (for <img>, downloads
                  and EventSource, which cannot send a token), under a key the servers share

With no token created the server is in single-user mode: every request acts as the local user,
an admin. Once one exists, every request needs a token (or a share link, or a signed link).
"""

from .limits import OwnerLimits
from .principal import Action, Principal, Verdict, judge, local_user
from .shares import ShareInfo, create_share, list_shares, resolve_share, revoke_share
from .signing import job_access, verify_job_access
from .tokens import (
    TOKEN_PREFIX,
    TokenInfo,
    any_tokens,
    create_token,
    list_tokens,
    resolve_token,
    revoke_token,
)

__all__ = [
    "TOKEN_PREFIX",
    "Action",
    "OwnerLimits",
    "Principal",
    "ShareInfo",
    "TokenInfo",
    "Verdict",
    "any_tokens",
    "create_share",
    "create_token",
    "job_access",
    "judge",
    "list_shares",
    "list_tokens",
    "local_user",
    "resolve_share",
    "resolve_token",
    "revoke_share",
    "revoke_token",
    "verify_job_access",
]
