"""TCP option bytes: SACK blocks and the window scale, as the time-sequence graph reads them."""
from netbed.trace.options import parse_options


def test_sack_blocks_and_window_scale_are_read():
    sack = bytes([1, 1, 5, 18]) + (1000).to_bytes(4, "big") + (2448).to_bytes(4, "big") \
        + (5000).to_bytes(4, "big") + (6448).to_bytes(4, "big")
    opts = parse_options(sack)
    assert opts.sack == [(1000, 2448), (5000, 6448)] and opts.wscale is None
    syn = bytes([2, 4, 5, 180, 4, 2, 8, 10]) + bytes(8) + bytes([1, 3, 3, 7])
    assert parse_options(syn).wscale == 7


def test_a_cut_option_ends_the_walk_without_error():
    assert parse_options(bytes([5, 18, 0, 0])).sack == []
    assert parse_options(bytes([3])).wscale is None
    assert parse_options(bytes([0, 3, 3, 7])).wscale is None  # after End of options: nothing
