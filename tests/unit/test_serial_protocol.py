"""Frames of the encoder protocol: round trips, noise on the line, BCC, and the encoder's replies."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbmis_serial.emulator import Encoder, new_card_file
from dbmis_serial.protocol import (
    ACK,
    MAX_DATA,
    NAK,
    REPLY,
    STX,
    Ack,
    BadBcc,
    Cmd,
    Frame,
    FrameError,
    FrameParser,
    Nak,
    Status,
    decode,
    encode,
)

frames = st.builds(Frame, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=MAX_DATA))
noise_without_stx = st.binary(max_size=40).map(lambda b: b.replace(bytes([STX]), b""))


def _raw(f: Frame) -> bytes:
    return encode(f.seq, f.cmd, f.data)


def _settle(parser: FrameParser) -> list:
    """Let the line go quiet until the parser holds nothing back."""
    events = []
    while more := parser.expire():
        events += more
    return events


@given(frames, st.integers(1, 64))
def test_frames_round_trip_whole_and_in_pieces(frame, piece):
    raw = _raw(frame)
    assert decode(raw) == frame
    parser = FrameParser()
    events = [ev for i in range(0, len(raw), piece) for ev in parser.feed(raw[i:i + piece])]
    assert events == [frame]


@given(st.lists(st.tuples(noise_without_stx, frames), max_size=5), noise_without_stx)
def test_frames_survive_noise_between_them(parts, tail):
    stream = b"".join(noise + _raw(f) for noise, f in parts) + tail
    events = FrameParser().feed(stream)
    assert [ev for ev in events if isinstance(ev, Frame)] == [f for _, f in parts]
    assert all(isinstance(ev, (Frame, Ack, Nak)) for ev in events)


@given(st.binary(max_size=600), st.integers(1, 600), frames)
def test_garbage_gives_typed_events_and_the_next_frame_gets_through(garbage, piece, frame):
    parser = FrameParser()
    events = [ev for i in range(0, len(garbage), piece) for ev in parser.feed(garbage[i:i + piece])]
    events += _settle(parser)
    assert all(isinstance(ev, (Frame, Ack, Nak, FrameError)) for ev in events)
    assert parser.feed(_raw(frame)) == [frame]


@given(st.binary(max_size=600))
def test_decode_of_garbage_raises_only_frame_errors(garbage):
    try:
        decode(garbage)
    except FrameError:
        pass


@given(frames, st.data())
def test_bcc_catches_any_single_corrupted_byte(frame, data):
    raw = bytearray(_raw(frame))
    at = data.draw(st.integers(1, len(raw) - 2), label="position (SEQ .. BCC)")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(FrameError):
        decode(raw)
    if at not in (3, 4):  # a hit LEN changes where the frame ends instead
        with pytest.raises(BadBcc):
            decode(raw)
        (event,) = FrameParser().feed(raw)
        assert isinstance(event, BadBcc)


def test_ack_and_nak_are_single_bytes_outside_frames():
    events = FrameParser().feed(bytes([ACK]) + _raw(Frame(1, 2, bytes([ACK, NAK]))) + bytes([NAK]))
    assert [type(ev) for ev in events] == [Ack, Frame, Nak]


def test_oversized_length_is_refused_at_once():
    (err,) = FrameParser().feed(bytes([STX, 1, 2, 0xFF, 0xFF]))
    assert type(err).__name__ == "BadLength"


# -- the encoder's side of the protocol, without a line --------------------------------------------
@pytest.fixture
def encoder(tmp_path):
    new_card_file(tmp_path / "c.card")
    enc = Encoder(tmp_path / "c.card")
    yield enc
    enc.close()


def _ask(enc: Encoder, seq: int, cmd: int, data: bytes = b"") -> Frame:
    out = enc.receive(encode(seq, cmd, data))
    assert out[0] == ACK
    return decode(out[1:])


def test_repeated_seq_is_answered_from_the_cache(encoder):
    _ask(encoder, 0, Cmd.POWER_ON)
    first = _ask(encoder, 1, Cmd.PRESENT_PSC, b"\x00\x00\x00")
    again = _ask(encoder, 1, Cmd.PRESENT_PSC, b"\x00\x00\x00")
    assert first == again == Frame(1, Cmd.PRESENT_PSC | REPLY, bytes([Status.WRONG_PSC, 2]))
    assert encoder.stats.duplicates == 1
    assert _ask(encoder, 2, Cmd.READ_ERROR_COUNTER).data == b"\x00\x02"


def test_seq_zero_is_never_a_repeat(encoder):
    _ask(encoder, 0, Cmd.POWER_ON)
    assert _ask(encoder, 0, Cmd.POWER_ON).data[0] == Status.OK
    assert encoder.stats.duplicates == 0 and encoder.stats.executed == [Cmd.POWER_ON] * 2


def test_garbled_request_is_naked_and_a_nak_repeats_the_last_reply(encoder):
    raw = bytearray(encode(0, Cmd.STATUS))
    raw[-2] ^= 1
    assert encoder.receive(bytes(raw)) == bytes([NAK])
    reply = encoder.receive(encode(1, Cmd.STATUS))[1:]
    assert encoder.receive(bytes([NAK])) == reply


def test_unknown_command(encoder):
    assert _ask(encoder, 1, 0x7F).data == bytes([Status.BAD_COMMAND])


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(list(Cmd)), st.binary(max_size=300)), max_size=8))
def test_encoder_answers_any_request_with_a_known_status(encoder, requests):
    for seq, (cmd, data) in enumerate(requests, start=1):
        reply = _ask(encoder, seq, cmd, data)
        assert reply.seq == seq and reply.cmd == cmd | REPLY
        assert reply.data[0] in set(Status) - {Status.BAD_COMMAND, Status.ENCODER_FAULT}
