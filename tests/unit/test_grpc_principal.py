"""Who a gRPC call is (services/agent_grpc resolve_principal): its token, or on a listener bound
to a tenant, that tenant's agent when it sends none (skywalking-go's pprof calls)."""
import pytest

from proftask.auth import AuthError, Principal, TokenTable, parse_token_list
from services.agent_grpc.pprof_task import PprofTaskServicer

TOKENS = TokenTable(parse_token_list("agA=acme:agent,agB=beta:agent,userA=acme:user,rootB=beta:admin"))


class Call:
    def __init__(self, token=None):
        self.metadata = () if token is None else (("authentication", token),)

    def invocation_metadata(self):
        return self.metadata


def principal(token, bound_tenant=None) -> Principal:
    return PprofTaskServicer(None, None, TOKENS, bound_tenant).resolve_principal(Call(token))


def test_main_listener_needs_an_agent_token():
    assert principal("agA") == Principal("acme", "agent")
    assert principal("Bearer agB").tenant == "beta"
    for token, code in ((None, "UNAUTHENTICATED"), ("nope", "UNAUTHENTICATED"), ("userA", "FORBIDDEN")):
        with pytest.raises(AuthError) as e:
            principal(token)
        assert e.value.code == code


def test_bound_listener_makes_a_tokenless_call_its_tenants_agent_and_refuses_other_tenants():
    assert principal(None, "acme") == Principal("acme", "agent")
    assert principal("", "acme") == Principal("acme", "agent")
    assert principal("agA", "acme") == Principal("acme", "agent")
    for token, code in (("agB", "FORBIDDEN"), ("rootB", "FORBIDDEN"), ("userA", "FORBIDDEN"),
                        ("nope", "UNAUTHENTICATED")):
        with pytest.raises(AuthError) as e:
            principal(token, "acme")
        assert e.value.code == code, token
