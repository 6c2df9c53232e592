"""Tokens, tenants and roles (docs/design.md §4b), pure: which tenant a token belongs to and what its role
may do. The HTTP middleware and the gRPC service both ask this table.

Roles: `agent` (commands, uploads, error reports), `user` (tasks, progress, analysis, exports),
`admin` (everything). With no tokens configured, every caller is the `default` tenant's admin.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from proftask.errors import Forbidden, Unauthenticated
from proftask.events import DEFAULT_TENANT

ROLES = ("agent", "user", "admin")
AGENT, USER, ADMIN = ROLES


# What authentication raises: Unauthenticated (no or unknown token) or Forbidden (the role may
# not do this), for `except AuthError`.
AuthError = (Unauthenticated, Forbidden)


@dataclasses.dataclass(frozen=True)
class Principal:
    tenant: str
    role: str

    def require(self, needed: str) -> None:
        if self.role != ADMIN and self.role != needed:
            article = "an" if self.role in ("agent", "admin") else "a"  # "a user"
            raise Forbidden(f"{article} {self.role} token cannot do this (needs {needed} or admin)")


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    token: str
    tenant: str
    role: str


def parse_token_list(text: str) -> list[TokenGrant]:
    """`token=tenant:role,token=tenant:role` (the PROFTASK_TOKENS form)."""
    grants = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        token, _, rest = item.partition("=")
        tenant, _, role = rest.partition(":")
        grants.append(TokenGrant(token.strip(), tenant.strip(), role.strip()))
    return grants


def _digest(token: str) -> bytes:
    # Looked up by digest: a dict probe on the token itself would leak its prefix by timing.
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    def __init__(self, grants: Iterable[TokenGrant] = ()):
        self._by_digest: dict[bytes, Principal] = {}
        for g in grants:
            if not g.token or not g.tenant:
                raise ValueError("every token needs a non-empty token and tenant")
            if g.role not in ROLES:
                raise ValueError(f"token role must be one of {', '.join(ROLES)}, not {g.role!r}")
            self._by_digest[_digest(g.token)] = Principal(g.tenant, g.role)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def tenants(self) -> list[str]:
        return sorted({p.tenant for p in self._by_digest.values()})

    def authenticate(self, token: str | None) -> Principal:
        if not self.enabled:
            return Principal(DEFAULT_TENANT, ADMIN)
        if not token:
            raise Unauthenticated("a token is required (Authorization: Bearer <token>)")
        principal = self._by_digest.get(_digest(token))
        if principal is None:
            raise Unauthenticated("unknown token")
        return principal


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
