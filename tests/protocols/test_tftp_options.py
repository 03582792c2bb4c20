"""Option negotiation: what the OACK answers and what the transfer then uses."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.tftp.options import TransferParameters, negotiate
from protocols.tftp.session import SessionLimits
from tests.support.fuzz import FUZZ_EXAMPLES

LIMITS = SessionLimits(max_blksize=1468, max_windowsize=16)
SIZE = 1_048_576

CASES = [
    # (request options, OACK options, parameters)
    ((), (), TransferParameters()),
    ((("blksize", "1456"),), (("blksize", "1456"),), TransferParameters(blksize=1456)),
    ((("blksize", "65464"),), (("blksize", "1468"),), TransferParameters(blksize=1468)),
    ((("blksize", "8"),), (("blksize", "8"),), TransferParameters(blksize=8)),
    ((("blksize", "7"),), (), TransferParameters()),
    ((("blksize", "65465"),), (), TransferParameters()),
    ((("blksize", "0512"),), (("blksize", "512"),), TransferParameters(blksize=512)),
    ((("tsize", "0"),), (("tsize", str(SIZE)),), TransferParameters(tsize=SIZE)),
    ((("tsize", "12"),), (("tsize", str(SIZE)),), TransferParameters(tsize=SIZE)),
    ((("timeout", "1"),), (("timeout", "1"),), TransferParameters(timeout=1)),
    ((("timeout", "255"),), (("timeout", "255"),), TransferParameters(timeout=255)),
    ((("timeout", "0"),), (), TransferParameters()),
    ((("timeout", "256"),), (), TransferParameters()),
    ((("windowsize", "4"),), (("windowsize", "4"),), TransferParameters(windowsize=4)),
    ((("windowsize", "65535"),), (("windowsize", "16"),), TransferParameters(windowsize=16)),
    ((("windowsize", "0"),), (), TransferParameters()),
    ((("windowsize", "65536"),), (), TransferParameters()),
    # names ignore case, the answer keeps the client's spelling and order
    (
        (("WindowSize", "4"), ("TSIZE", "0"), ("blksize", "1425")),
        (("WindowSize", "4"), ("TSIZE", str(SIZE)), ("blksize", "1425")),
        TransferParameters(blksize=1425, windowsize=4, tsize=SIZE),
    ),
    # unknown options and bad values are ignored, never fatal
    ((("multicast", ""), ("blksize", "1468")), (("blksize", "1468"),), TransferParameters(1468)),
    ((("blksize", ""),), (), TransferParameters()),
    ((("blksize", "abc"),), (), TransferParameters()),
    ((("blksize", " 512"),), (), TransferParameters()),
    ((("blksize", "-512"),), (), TransferParameters()),
    ((("blksize", "+512"),), (), TransferParameters()),
    ((("blksize", "1_000"),), (), TransferParameters()),
    ((("blksize", "\u0665\u0661\u0662"),), (), TransferParameters()),  # Arabic-Indic digits
    ((("tsize", "9" * 5000),), (), TransferParameters()),
    ((("tsize", "x"),), (), TransferParameters()),
    # a repeated option counts once, the first time
    ((("blksize", "1024"), ("BLKSIZE", "512")), (("blksize", "1024"),), TransferParameters(1024)),
    ((("blksize", "x"), ("blksize", "512")), (), TransferParameters()),
]


@pytest.mark.parametrize(("request_options", "oack", "parameters"), CASES)
def test_negotiation_answers_only_accepted_options_in_the_clients_order(
    request_options, oack, parameters
):
    assert negotiate(request_options, SIZE, LIMITS) == (oack, parameters)


def test_tsize_of_an_empty_file_is_left_out_of_the_oack():
    """curl refuses an OACK saying tsize 0, so an empty file's size is not announced;
    with no other option the transfer then starts with DATA 1 (nothing to acknowledge)."""
    assert negotiate((("tsize", "0"),), 0, LIMITS) == ((), TransferParameters())
    assert negotiate((("tsize", "0"), ("blksize", "512")), 0, LIMITS) == (
        (("blksize", "512"),),
        TransferParameters(blksize=512),
    )


_names = st.sampled_from(["blksize", "BLKSIZE", "tsize", "timeout", "windowsize", "x", ""])
_values = st.one_of(st.integers(-5, 70000).map(str), st.text(max_size=6))


@settings(max_examples=max(100, FUZZ_EXAMPLES // 10), deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=8).map(tuple), st.integers(0, 2**40))
def test_any_option_list_negotiates_within_limits_without_raising(request_options, size):
    oack, params = negotiate(request_options, size, LIMITS)
    asked = iter(name for name, _ in request_options)
    answered = [name for name, _ in oack]
    assert all(name in asked for name in answered), "answers follow the client's order"
    assert len({n.lower() for n in answered}) == len(answered), "each option answered once"
    assert 8 <= params.blksize <= LIMITS.max_blksize or params.blksize == 512
    assert 1 <= params.windowsize <= LIMITS.max_windowsize
    assert params.timeout is None or 1 <= params.timeout <= 255
    assert params.tsize in (None, size)
