import pytest

from proftask.auth import AuthError, Principal, TokenGrant, TokenTable, bearer_token, parse_token_list
from proftask.config import load_settings


def table() -> TokenTable:
    return TokenTable(parse_token_list("ta=tenant-a:agent, tu=tenant-a:user,tb=tenant-b:admin"))


def test_without_tokens_everyone_is_the_default_tenants_admin():
    t = TokenTable()
    assert not t.enabled
    assert t.authenticate(None) == Principal("default", "admin")
    assert t.authenticate("anything") == Principal("default", "admin")


def test_a_token_names_its_tenant_and_role():
    t = table()
    assert t.authenticate("ta") == Principal("tenant-a", "agent")
    assert t.authenticate("tb") == Principal("tenant-b", "admin")
    assert t.tenants() == ["tenant-a", "tenant-b"]


@pytest.mark.parametrize("token", [None, "", "nope", "ta "])
def test_missing_or_unknown_tokens_are_unauthenticated(token):
    with pytest.raises(AuthError) as e:
        table().authenticate(token)
    assert e.value.code == "UNAUTHENTICATED"


def test_roles():
    Principal("a", "agent").require("agent")
    Principal("a", "admin").require("user")
    Principal("a", "admin").require("agent")
    for principal, needed in [(Principal("a", "agent"), "user"), (Principal("a", "user"), "agent")]:
        with pytest.raises(AuthError) as e:
            principal.require(needed)
        assert e.value.code == "FORBIDDEN"


def test_bad_grants_are_refused_at_start():
    with pytest.raises(ValueError, match="role"):
        TokenTable([TokenGrant("t", "a", "root")])
    with pytest.raises(ValueError, match="non-empty"):
        TokenTable([TokenGrant("t", "", "user")])


def test_bearer_header():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None


def test_tokens_from_the_environment():
    s = load_settings(env={"PROFTASK_TOKENS": "x=acme:user,y=acme:agent"})
    assert [(g.token, g.tenant, g.role) for g in s.tokens] == [("x", "acme", "user"), ("y", "acme", "agent")]
    assert load_settings(env={}).tokens == []
