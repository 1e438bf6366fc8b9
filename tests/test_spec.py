"""Topology specs: addresses, MACs and routes are allocated and validated before anything exists."""
import pytest

from netbed import topologies
from netbed.errors import NetbedError
from netbed.spec import TopologyBuilder


def test_lan_gives_hosts_consecutive_addresses_and_distinct_macs():
    topo = topologies.build("lan", hosts=4)
    assert [h.ip for h in topo.hosts] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    macs = [h.interfaces[0].mac for h in topo.hosts]
    assert len(set(macs)) == 4
    assert all(m.startswith("02:6e:62:") and len(m.replace(":", "")) == 12 for m in macs)
    assert all(h.gateway is None for h in topo.hosts)


def test_multi_lan_hosts_route_through_the_router():
    topo = topologies.build("multi-lan", lans=3, hosts=2)
    assert len(topo.switches) == 3 and len(topo.hosts) == 6
    router = topo.node("r1")
    assert [str(i.address) for i in router.interfaces] == ["10.0.1.254/24", "10.0.2.254/24", "10.0.3.254/24"]
    assert topo.node("h1").gateway == "10.0.1.254"
    assert topo.node("h6").gateway == "10.0.3.254"
    assert topo.path("h1", "h6") == ["h1", "r1", "h6"]


def test_wan_routers_get_static_routes_along_the_chain():
    topo = topologies.build("wan", routers=3)
    routes = {r.name: {str(rt.destination): rt.via for rt in r.routes} for r in topo.routers}
    assert routes["r1"]["10.0.2.0/24"] == "10.254.1.2"
    assert routes["r2"]["10.0.1.0/24"] == "10.254.1.1"
    assert routes["r2"]["10.0.2.0/24"] == "10.254.2.2"
    assert routes["r3"]["10.0.1.0/24"] == "10.254.2.1"
    assert topo.path("h1", "h4") == ["h1", "r1", "r2", "r3", "h4"]


def test_large_lan_widens_its_subnet():
    topo = topologies.build("lan", hosts=500)
    assert topo.hosts[-1].ip == "10.0.1.244"


@pytest.mark.parametrize("params, message", [
    ({"hosts": 0}, "--hosts must be between 1 and"),
    ({"hosts": "x"}, "--hosts must be a whole number"),
    ({"hosts": 999999}, "--hosts must be between 1 and"),
    ({"subnet": "10.0.0.0/33"}, "malformed subnet"),
    ({"subnet": "10.0.0.1/24"}, "malformed subnet"),
    ({"hosts": 10, "subnet": "10.0.0.0/29"}, "too small"),
    ({"routers": 2}, "takes no --routers"),
])
def test_bad_lan_parameters_are_refused_before_anything_is_built(params, message):
    with pytest.raises(NetbedError, match=message):
        topologies.build("lan", **params)


def test_overlapping_subnets_are_refused():
    b = TopologyBuilder("x")
    b.lan("s1", "10.0.0.0/16")
    b.lan("s2", "10.0.5.0/24")
    with pytest.raises(NetbedError, match="subnets overlap"):
        b.build()


@pytest.mark.parametrize("name", ["h1;rm", "averyverylongname", "H1", "1h", "h-1", "$(id)"])
def test_names_that_are_too_long_or_hold_shell_characters_are_refused(name):
    b = TopologyBuilder("x")
    b.lan("s1", "10.0.0.0/24")
    b.host(name, "s1")
    with pytest.raises(NetbedError, match="bad name"):
        b.build()


def test_unknown_topology_lists_the_choices():
    with pytest.raises(NetbedError, match="choose one of lan, multi-lan, wan"):
        topologies.build("ring")
