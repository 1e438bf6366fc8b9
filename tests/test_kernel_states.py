"""Kernel state timelines from bpftrace's log: order, TIME_WAIT, repeated states, other namespaces."""
from netbed.trace.kernel_states import listed_in_time_wait, parse_log, socket_history, timeline
from netbed.trace.model import Endpoint

CLIENT, SERVER = Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.3", 9000)


def line(ns: int, netns: int, sock: str, local: Endpoint, remote: Endpoint, old: int, new: int) -> str:
    return f"S {ns} {netns} {sock} 4 {local.ip} {local.port} {remote.ip} {remote.port} {old} {new}"


def test_lines_from_two_cpus_are_put_back_in_time_order():
    # close() after shutdown() (FIN_WAIT_1 again) ran on one CPU and was printed after the
    # changes that followed it on the other
    log = "\n".join([
        line(100, 7, "a", SERVER, CLIENT, 3, 1),
        line(200, 7, "a", SERVER, CLIENT, 1, 4),
        line(400, 7, "a", SERVER, CLIENT, 4, 5),
        line(500, 7, "a", SERVER, CLIENT, 5, 7),
        line(300, 7, "a", SERVER, CLIENT, 4, 4),
    ])
    states = timeline(socket_history(parse_log(log, 0.0), 7, SERVER, CLIENT), in_time_wait=True)
    assert [s["state"] for s in states] == ["SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]


def test_the_same_socket_address_reused_later_is_a_new_socket():
    log = "\n".join([
        line(100, 7, "a", CLIENT, SERVER, 7, 2),
        line(200, 7, "a", CLIENT, SERVER, 2, 7),  # refused
        line(300, 7, "a", Endpoint("10.0.0.1", 40001), SERVER, 7, 2),
    ])
    history = socket_history(parse_log(log, 0.0), 7, CLIENT, SERVER)
    assert [e.new for e in history] == ["SYN_SENT", "CLOSED"]


def test_other_namespaces_and_cut_lines_are_ignored():
    log = line(100, 8, "a", CLIENT, SERVER, 7, 2) + "\nS 200 7 a 4 10.0.0.1"
    assert socket_history(parse_log(log, 0.0), 7, CLIENT, SERVER) == []


def test_clock_offset_moves_times_onto_the_capture_clock():
    (event,) = parse_log(line(2_000_000_000, 7, "a", CLIENT, SERVER, 7, 2), 1000.0)
    assert event.time == 1002.0


def test_time_wait_is_read_from_ss():
    lines = ["ESTAB 0 0 10.0.0.1:40001 10.0.0.3:9000", "TIME-WAIT 0 0 10.0.0.1:40000 10.0.0.3:9000"]
    assert listed_in_time_wait(lines, CLIENT, SERVER)
    assert not listed_in_time_wait(lines[:1], CLIENT, SERVER)
