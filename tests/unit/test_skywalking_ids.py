"""SkyWalking's service and instance ids, both ways; plain names pass through."""
from proftask.core import skywalking_ids as ids


def test_ids_are_the_oaps():
    assert ids.service_id("demo") == "ZGVtbw==.1"
    assert ids.instance_id("demo", "demo-1") == "ZGVtbw==.1_ZGVtby0x"


def test_ids_and_names_both_resolve_to_names():
    for service, instance in (("demo", "demo-1"), ("checkout", "pod_7"), ("ünï code", "a.1"), ("x.1", "y")):
        assert ids.service_name(ids.service_id(service)) == service
        assert ids.service_name(service) == service
        assert ids.instance_name(ids.instance_id(service, instance)) == instance
        assert ids.instance_name(ids.instance_id(service, instance), ids.service_id(service)) == instance
        assert ids.instance_name(instance) == instance


def test_near_misses_stay_plain_names():
    for name in ("abc.1", "ZGVtbw.1", "ZGVtbw==.2", "", ".1", "pod_1", "ZGVtbw==.1_", "ZGVtbw==.1_!!"):
        assert ids.service_name(name) == name
        assert ids.instance_name(name) == name
    # an instance id of another service is not this service's instance
    assert ids.instance_name(ids.instance_id("a", "i"), "b") == ids.instance_id("a", "i")
