"""The TFTP grammar: exact round trips, actionable errors, and a struct hot path that agrees."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import MalformedPacket
from protocols.tftp.wire import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Message,
    OptionAck,
    ReadRequest,
    WriteRequest,
    ack_block,
    decode_ack,
    decode_data,
    decode_tftp,
    encode_ack,
    encode_data,
    encode_tftp,
)
from tests.support.fuzz import FUZZ_EXAMPLES, fuzz_settings

# The 20,000-example budget is for random bytes into the decoder; properties of generated
# messages converge much sooner.
property_settings = settings(max_examples=max(100, FUZZ_EXAMPLES // 10), deadline=None)

GOOD = [
    (b"\x00\x01file1\x00octet\x00", ReadRequest("file1", "octet")),
    (
        b"\x00\x01boot\x00OCTET\x00tsize\x000\x00BlkSize\x001456\x00",
        ReadRequest("boot", "OCTET", (("tsize", "0"), ("BlkSize", "1456"))),
    ),
    (b"\x00\x01padded\x00octet\x00\x00\x00\x00", ReadRequest("padded", "octet", (), 3)),
    (b"\x00\x01f\x00octet\x00blksize\x00\x00", ReadRequest("f", "octet", (("blksize", ""),))),
    (b"\x00\x01\x00octet\x00", ReadRequest("", "octet")),
    (b"\x00\x01caf\xc3\xa9\xff\x00octet\x00", ReadRequest("caf\xe9\udcff", "octet")),
    (b"\x00\x02zz.bin\x00netascii\x00", WriteRequest("zz.bin", "netascii")),
    (b"\x00\x03\x00\x01", Data(1, b"")),
    (b"\x00\x03\xff\xff\x00\x00hello", Data(65535, b"\x00\x00hello")),
    (b"\x00\x04\x00\x00", Ack(0)),
    (b"\x00\x05\x00\x08User aborted the transfer\x00", Error(8, "User aborted the transfer")),
    (b"\x00\x05\x00\x01\x00\x00", Error(ErrorCode.FILE_NOT_FOUND, "", 1)),
    (b"\x00\x05\x00\x63odd code\x00", Error(99, "odd code")),
    (b"\x00\x06blksize\x00256\x00", OptionAck((("blksize", "256"),))),
    (b"\x00\x06", OptionAck()),
]


@pytest.mark.parametrize(("datagram", "message"), GOOD)
def test_well_formed_datagrams_decode_and_re_encode_byte_for_byte(datagram, message):
    assert decode_tftp(datagram) == message
    assert encode_tftp(message) == datagram


def test_known_error_codes_decode_as_the_enum_and_others_as_int():
    """Callers may compare with ErrorCode members; unknown codes still round-trip."""
    assert decode_tftp(b"\x00\x05\x00\x05x\x00").code is ErrorCode.UNKNOWN_TID
    assert type(decode_tftp(b"\x00\x05\x00\x09x\x00").code) is int


def test_mode_and_option_lookups_ignore_case_but_keep_the_original():
    rrq = decode_tftp(b"\x00\x01f\x00NetAscii\x00TSize\x000\x00tsize\x009\x00")
    assert isinstance(rrq, ReadRequest)
    assert rrq.mode == "NetAscii" and rrq.mode_name == "netascii"
    assert rrq.option("tsize") == "0", "the first of repeated options wins"
    assert rrq.option("BLKSIZE") is None


BAD = [
    (b"", "TFTP: opcode truncated: 0 of 2 bytes", 0),
    (b"\x00", "TFTP: opcode truncated: 1 of 2 bytes", 0),
    (b"\x00\x07", "TFTP: unknown opcode 7 (TFTP has 1-6)", 0),
    (b"\x00\x00", "TFTP: unknown opcode 0 (TFTP has 1-6)", 0),
    (b"\x00\x01abcdefg", "RRQ: file name not NUL-terminated", 9),
    (b"\x00\x01abc\x00", "RRQ: mode missing", 6),
    (b"\x00\x01abc\x00octet", "RRQ: mode not NUL-terminated", 11),
    (b"\x00\x01a\x00octet\x00blksize\x00", "RRQ: value of option 'blksize' missing", 18),
    (b"\x00\x02a\x00octet\x00tsize\x000", "WRQ: value of option 'tsize' not NUL-terminated", 17),
    (b"\x00\x01a\x00octet\x00\x00tsize\x000\x00", "RRQ: unexpected data after the last", 11),
    (b"\x00\x03\x00", "DATA: block number truncated: 1 of 2 bytes", 2),
    (b"\x00\x04\x00\x01\x00", "ACK: 1 unexpected byte(s) after the block number", 4),
    (b"\x00\x05\x00", "ERROR: error code truncated: 1 of 2 bytes", 2),
    (b"\x00\x05\x00\x01oops", "ERROR: error message not NUL-terminated", 8),
    (b"\x00\x06blksize", "OACK: option name not NUL-terminated", 9),
]


@pytest.mark.parametrize(("datagram", "reason", "offset"), BAD)
def test_malformed_datagrams_say_which_field_broke_and_where(datagram, reason, offset):
    with pytest.raises(MalformedPacket) as caught:
        decode_tftp(datagram)
    assert caught.value.reason.startswith(reason)
    assert caught.value.offset == offset


@pytest.mark.parametrize(
    "message",
    [
        Ack(65536),
        Data(-1, b""),
        ReadRequest("a\x00b"),
        ReadRequest("a", "oct\x00et"),
        OptionAck((("", "1"),)),
        OptionAck((("blksize", "5\x0012"),)),
        Error(70000, "x"),
        Error(0, "x", -1),
    ],
)
def test_encoding_a_message_that_cannot_exist_on_the_wire_is_a_value_error(message):
    with pytest.raises(ValueError, match="cannot encode"):
        encode_tftp(message)


# --- properties ---------------------------------------------------------------------------

_wire_text = st.binary(max_size=40).filter(lambda b: b"\x00" not in b)
_text = _wire_text.map(lambda b: b.decode("utf-8", "surrogateescape"))
_name = _text.filter(bool)
_options = st.lists(st.tuples(_name, _text), max_size=6).map(tuple)
_block = st.integers(0, 0xFFFF)
_padding = st.integers(0, 4)

messages = st.one_of(
    st.builds(ReadRequest, _text, _text, _options, _padding),
    st.builds(WriteRequest, _text, _text, _options, _padding),
    st.builds(Data, _block, st.binary(max_size=600)),
    st.builds(Ack, _block),
    st.builds(Error, st.sampled_from(list(ErrorCode)) | _block, _text, _padding),
    st.builds(OptionAck, _options, _padding),
)


@property_settings
@given(messages)
def test_generated_messages_round_trip(message: Message):
    assert decode_tftp(encode_tftp(message)) == message


def _assert_decodes_or_is_malformed(datagram: bytes) -> None:
    try:
        message = decode_tftp(datagram)
    except MalformedPacket:
        return
    assert encode_tftp(message) == datagram


@fuzz_settings
@given(st.binary(max_size=80))
def test_random_bytes_decode_and_round_trip_or_raise_malformed_packet(datagram: bytes):
    _assert_decodes_or_is_malformed(datagram)


# Random bytes rarely form a valid opcode followed by NUL-separated fields; these do.
_fragments = st.lists(
    st.sampled_from([b"\x00", b"\x00\x00", b"octet", b"blksize", b"1468", b"\xff", b"\x01"]),
    max_size=10,
).map(b"".join)


@fuzz_settings
@given(st.integers(0, 7).map(lambda op: op.to_bytes(2, "big")), _fragments)
def test_near_miss_datagrams_decode_and_round_trip_or_raise_malformed_packet(opcode, tail):
    _assert_decodes_or_is_malformed(opcode + tail)


# --- the struct hot path ------------------------------------------------------------------


@property_settings
@given(_block, st.binary(max_size=1500))
def test_fast_data_codec_agrees_with_the_grammar(block: int, payload: bytes):
    datagram = encode_data(block, payload)
    assert datagram == encode_tftp(Data(block, payload))
    assert decode_data(datagram) == decode_tftp(datagram) == Data(block, payload)


@property_settings
@given(_block)
def test_fast_ack_codec_agrees_with_the_grammar(block: int):
    datagram = encode_ack(block)
    assert datagram == encode_tftp(Ack(block))
    assert decode_ack(datagram) == decode_tftp(datagram) == Ack(block)
    assert ack_block(datagram) == block


_PREFIXES = [b"\x00\x03", b"\x00\x04", b""]
_data_or_ack_ish = st.tuples(st.sampled_from(_PREFIXES), st.binary(max_size=8))


@property_settings
@given(_data_or_ack_ish.map(b"".join))
def test_fast_decoders_accept_exactly_what_the_grammar_decodes_as_data_or_ack(datagram: bytes):
    try:
        reference: Message | None = decode_tftp(datagram)
    except MalformedPacket:
        reference = None
    if isinstance(reference, Ack):
        assert decode_ack(datagram) == reference and ack_block(datagram) == reference.block
    else:
        assert ack_block(datagram) is None
        with pytest.raises(MalformedPacket):
            decode_ack(datagram)
    if isinstance(reference, Data):
        assert decode_data(datagram) == reference
    else:
        with pytest.raises(MalformedPacket):
            decode_data(datagram)


def _parsed_or_why(grammar, raw: bytes):
    from protocols.tftp.wire import _Bad

    try:
        return grammar.parse(raw)
    except _Bad as bad:
        return ("malformed", bad.reason, bad.offset)


@fuzz_settings
@given(
    st.lists(st.sampled_from([b"\x00", b"a", b"octet", b"blksize", b"\xff"]), max_size=12).map(
        b"".join
    )
    | st.binary(max_size=40)
)
def test_request_fields_split_in_one_pass_agree_with_the_field_by_field_grammar(raw: bytes):
    from protocols.tftp.wire import _REQUEST, _REQUEST_FIELDS

    assert _parsed_or_why(_REQUEST, raw) == _parsed_or_why(_REQUEST_FIELDS, raw)
