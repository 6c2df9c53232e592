"""proftask.ingest.budget: with several tenants, one tenant's uploads cannot hold the whole
budget; alone, a tenant has all of it."""
from proftask.ingest.budget import TENANT_SHARE, UploadBudget, process_budget

MB = 1 << 20


def test_one_tenant_of_several_holds_at_most_its_share_and_another_still_gets_in():
    budget = UploadBudget(100 * MB, tenant_share=TENANT_SHARE)
    assert budget.tenant_capacity == 75 * MB
    for _ in range(3):
        assert budget.try_charge("bolt", 25 * MB)
    assert not budget.try_charge("bolt", 1)  # its share is full, the budget is not
    assert "one tenant may hold" in budget.busy("bolt", 1).reason
    assert budget.try_charge("acme", 25 * MB)
    assert not budget.try_charge("acme", 1)  # now the budget itself is full
    assert "upload budget of" in budget.busy("acme", 1).reason
    budget.release("bolt", 25 * MB)
    assert budget.by_tenant == {"bolt": 50 * MB, "acme": 25 * MB} and budget.used == 75 * MB
    assert budget.try_charge("bolt", 25 * MB)


def test_the_process_budget_is_shared_only_with_several_tenants():
    assert process_budget(64 * MB, tenants=2).tenant_capacity == 48 * MB
    assert process_budget(64 * MB, tenants=1).tenant_capacity == process_budget(64 * MB, tenants=0).capacity


def test_a_tenant_alone_has_the_whole_budget_and_an_upload_larger_than_a_share_gets_in_alone():
    alone = UploadBudget(100 * MB)
    assert alone.try_charge("default", 60 * MB) and alone.try_charge("default", 40 * MB)
    shared = UploadBudget(100 * MB, tenant_share=TENANT_SHARE)
    assert shared.try_charge("bolt", 90 * MB)  # nothing else in flight
    shared.release("bolt", 90 * MB)
    assert shared.used == 0 and not shared.by_tenant
