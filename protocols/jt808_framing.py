"""JT/T 808 framing: escape, check byte, header (2013 and 2019), the message
envelope, the stream splitter and subpackage reassembly (Traccar's frame
decoder and header parsing). Bodies come from jt808_bodies.py. CPython only."""
import struct
import time as _time
from dataclasses import dataclass

from protocols.jt808_bodies import Raw, GeneralResponse, RegisterResponse, body_class, decode_body, encode_body
from protocols.jt808_codes import MESSAGE_NAMES, JT808Error

MAX_BODY = 1023                      # 10-bit length field
MAX_FRAME = 2 + 2 * (21 + MAX_BODY + 1)  # delimiters + everything escaped


# --------------------------------------------------------------------------
# framing

def xor_check(data):
    """JT/T 808 check byte: XOR of every byte from the header to the end of the body.
    Folding one big int in halves keeps the work in C: about 6x faster than a
    byte loop on a full 1 KB body (the gateway checks every frame of every vehicle)."""
    x = int.from_bytes(bytes(data), "little")
    n = len(data)
    while n > 1:
        half = (n + 1) // 2
        x = (x & ((1 << 8 * half) - 1)) ^ (x >> 8 * half)
        n = half
    return x


def escape(data):
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data):
    if b"\x7e" in data:
        raise JT808Error("escape", "0x7E inside a frame")
    n = data.count(b"\x7d")
    if n:
        if n != data.count(b"\x7d\x01") + data.count(b"\x7d\x02"):
            raise JT808Error("escape", "0x7D not followed by 01 or 02")
        # 7D02 first: undoing 7D01 first could turn 7D 01 02 into a false 7D 02
        data = data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    return data


# The header is parsed for every frame: plain struct, because construct's
# BitStruct for the attribute word costs ~13 us even compiled, more than all
# the rest of a typical decode.
_HEAD = struct.Struct(">HH")
_WORD = struct.Struct(">H")
_PACKET = struct.Struct(">HH")
ENCRYPTION_SHIFT, SUBPACKAGE, VERSION_FLAG, RESERVED = 10, 1 << 13, 1 << 14, 1 << 15


def _str_to_bcd(digits, size):
    try:
        return bytes.fromhex(digits.rjust(2 * size, "0"))
    except ValueError:
        raise JT808Error("header", "phone %r is not digits" % (digits,)) from None


def _norm_phone(phone, version):
    size = 20 if version == 2019 else 12
    phone = str(phone).lower()
    if len(phone) > size or phone.strip("0123456789abcdef"):   # strip stops at a bad char
        raise JT808Error("header", "phone %r: up to %d digits" % (phone, size))
    return phone.rjust(size, "0")


@dataclass(frozen=True)
class Message:
    """One JT/T 808 message.  `body` is a body object (Position, Register, …),
    Raw, or None for the empty-bodied ids; `phone` is normalised to its full
    width so a decoded message compares equal to the one that was encoded."""
    msg_id: int
    phone: str
    body: object = None
    flow: int = 0
    version: int = 2013
    packet: tuple = None            # (total, index) of a subpackage, index from 1
    encryption: int = 0             # attribute bits 10-12; non-zero bodies stay Raw
    protocol_version: int = None    # the 2019 header's version byte (1); None in 2013

    def __post_init__(self):
        if self.version not in (2013, 2019):
            raise JT808Error("header", "version must be 2013 or 2019")
        object.__setattr__(self, "phone", _norm_phone(self.phone, self.version))
        pv = None if self.version == 2013 else (1 if self.protocol_version is None
                                                 else self.protocol_version)
        object.__setattr__(self, "protocol_version", pv)
        if self.packet is not None:
            object.__setattr__(self, "packet", tuple(self.packet))

    @property
    def name(self):
        return MESSAGE_NAMES.get(self.msg_id, "unknown")

    def to_dict(self):
        body = self.body
        return {
            "msg_id": "0x%04X" % self.msg_id,
            "name": self.name,
            "phone": self.phone,
            "flow": self.flow,
            "version": self.version,
            "protocol_version": self.protocol_version,
            "packet": list(self.packet) if self.packet else None,
            "encryption": self.encryption,
            "body": None if body is None else body.to_dict(self.version),
        }


def decode_frame(data):
    """One frame, 7E … 7E, escaped -> Message.  Raises JT808Error only."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise JT808Error("frame", "expected bytes, got %s" % type(data).__name__)
    data = bytes(data)
    if len(data) < 2 or data[0] != 0x7E or data[-1] != 0x7E:
        raise JT808Error("frame", "a frame starts and ends with 0x7E")
    raw = unescape(data[1:-1])
    if len(raw) < 13:
        raise JT808Error("length", "%d bytes is shorter than a header" % len(raw))
    if xor_check(raw[:-1]) != raw[-1]:
        raise JT808Error("check", "check byte %02X, computed %02X" % (raw[-1], xor_check(raw[:-1])))
    msg_id, attrs = _HEAD.unpack_from(raw, 0)
    if attrs & RESERVED:
        raise JT808Error("header", "reserved attribute bit 15 set")
    if attrs & VERSION_FLAG:
        version, pos = 2019, 17
        if len(raw) < pos + 1:
            raise JT808Error("length", "short 2019 header")
        protocol_version, phone = raw[4], raw[5:15]
    else:
        version, pos, protocol_version, phone = 2013, 12, None, raw[4:10]
    flow, = _WORD.unpack_from(raw, pos - 2)
    packet = None
    if attrs & SUBPACKAGE:
        if len(raw) < pos + 5:
            raise JT808Error("length", "short subpackage header")
        packet = _PACKET.unpack_from(raw, pos)
        pos += 4
        if not 1 <= packet[1] <= packet[0]:
            raise JT808Error("header", "packet %d of %d" % (packet[1], packet[0]))
    length = attrs & 0x3FF
    if len(raw) - 1 - pos != length:
        raise JT808Error("length", "attributes say %d body bytes, frame has %d"
                         % (length, len(raw) - 1 - pos))
    encryption = attrs >> ENCRYPTION_SHIFT & 7
    body = raw[pos:-1]
    if encryption or packet:
        body = Raw(body)
    else:
        body = decode_body(msg_id, body, version)
    return Message(msg_id, phone.hex(), body, flow, version, packet,
                   encryption, protocol_version)


def encode_frame(msg):
    body = encode_body(msg.msg_id, msg.body, msg.version)
    if len(body) > MAX_BODY:
        raise JT808Error("length", "body of %d bytes; split it with fragment()" % len(body))
    attrs = len(body) | (msg.encryption << ENCRYPTION_SHIFT)
    if msg.packet:
        attrs |= SUBPACKAGE
    try:
        if msg.version == 2019:
            head = _HEAD.pack(msg.msg_id, attrs | VERSION_FLAG) + bytes([msg.protocol_version]) \
                + _str_to_bcd(msg.phone, 10)
        else:
            head = _HEAD.pack(msg.msg_id, attrs) + _str_to_bcd(msg.phone, 6)
        head += _WORD.pack(msg.flow)
        if msg.packet:
            head += _PACKET.pack(*msg.packet)
    except (struct.error, ValueError, TypeError) as e:
        raise JT808Error("header", str(e)) from None
    raw = head + body
    return b"\x7e" + escape(raw + bytes([xor_check(raw)])) + b"\x7e"


def message_from_dict(d):
    """Inverse of Message.to_dict (what `jifang decode jt808` prints)."""
    try:
        msg_id = d["msg_id"]
        msg_id = int(msg_id, 16) if isinstance(msg_id, str) else int(msg_id)
        version = int(d.get("version", 2013))
        encryption = int(d.get("encryption", 0))
        packet = d.get("packet")
        body = d.get("body")
        if body is not None:
            cls = Raw if "raw" in body else body_class(msg_id, encryption, packet)
            body = cls.from_dict(body, version)
        return Message(msg_id, d["phone"], body, int(d.get("flow", 0)), version,
                       tuple(packet) if packet else None, encryption,
                       d.get("protocol_version"))
    except JT808Error:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise JT808Error("body", "bad message dict: %r" % (e,)) from None


# --------------------------------------------------------------------------
# stream splitting and subpackages

class FrameSplitter:
    """Feed TCP bytes, get whole frames (with their 7E delimiters, still escaped).

    A frame is passed on only when its escapes and check byte are right; when
    they are not (noise, a frame cut short by a reconnect, the 7E 7E between
    back-to-back frames) its bytes are dropped and its closing 7E is taken as
    the opening of the next frame, which is how the splitter resyncs.  Dropped
    bytes, and frames growing past `max_frame`, are counted in `.discarded`.
    """

    def __init__(self, max_frame=MAX_FRAME):
        self.max_frame = max_frame
        self.discarded = 0
        self._buf = bytearray()      # the open frame from its 7E, or empty

    @property
    def pending(self):
        """True while bytes of an incomplete frame are held."""
        return bool(self._buf)

    def feed(self, data):
        frames = []
        data = bytes(data)
        while data:
            if not self._buf:
                start = data.find(b"\x7e")
                if start < 0:
                    self.discarded += len(data)
                    return frames
                self.discarded += start
                self._buf = bytearray(b"\x7e")
                data = data[start + 1:]
            end = data.find(b"\x7e")
            if end < 0:
                self._buf += data
                if len(self._buf) > self.max_frame:
                    self.discarded += len(self._buf)
                    self._buf = bytearray()
                return frames
            self._buf += data[:end]
            data = data[end + 1:]
            if len(self._buf) < self.max_frame and _plausible(self._buf[1:]):
                frames.append(bytes(self._buf) + b"\x7e")
                self._buf = bytearray()
            else:
                self.discarded += len(self._buf)
                self._buf = bytearray(b"\x7e")
        return frames


def _plausible(content):
    try:
        raw = unescape(bytes(content))
    except JT808Error:
        return False
    return len(raw) >= 13 and xor_check(raw[:-1]) == raw[-1]


def fragment(msg, size=MAX_BODY):
    """Split a message whose body is too long into subpackages (flows count up)."""
    body = encode_body(msg.msg_id, msg.body, msg.version)
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    return [Message(msg.msg_id, msg.phone, Raw(p), (msg.flow + i) & 0xFFFF, msg.version,
                    (len(parts), i + 1), msg.encryption, msg.protocol_version)
            for i, p in enumerate(parts)]


class Reassembler:
    """Joins subpackages keyed by (phone, msg id).  Bounded in messages held at
    once (`max_pending`), packets per message (`max_packets`), bytes held
    (`max_bytes`) and age: a message whose parts stop coming for `timeout`
    seconds is forgotten.  Over a bound, the packet is refused (JT808Error
    reason "limit") rather than something else evicted, so a terminal flooding
    keys cannot push out the message a well-behaved one is completing.
    `bytes` is what it holds now, for a caller keeping a budget across
    reassemblers.  Each packet is charged its body plus `packet_overhead` (what
    Python spends holding it), so a flood of 1-byte packets is bounded too."""

    def __init__(self, timeout=60.0, max_pending=64, max_packets=256, max_bytes=1 << 20, packet_overhead=256,
                 clock=_time.monotonic):
        self.timeout = timeout
        self.packet_overhead = packet_overhead
        self.max_pending = max_pending
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._pending = {}           # key -> [last_seen, total, {index: Message}, bytes]

    def feed(self, msg):
        """Returns the whole message when complete (at once for one without
        packet fields), else None.  Raises JT808Error when the joined body
        does not decode, `total` is over the limit, or holding the packet would
        pass a bound (reason "limit")."""
        if msg.packet is None:
            return msg
        now = self.clock()
        self.expire(now)
        total, index = msg.packet
        if total > self.max_packets:
            raise JT808Error("length", "%d packets is over the limit of %d" % (total, self.max_packets))
        key = (msg.phone, msg.msg_id)
        entry = self._pending.get(key)
        if entry is not None and entry[1] != total:
            self._drop(key)          # a new message under the same key: the old one will not complete
            entry = None
        if entry is None and len(self._pending) >= self.max_pending:
            raise JT808Error("limit", "%d messages already in reassembly (limit %d)"
                             % (len(self._pending), self.max_pending))
        size = len(msg.body.data) + self.packet_overhead
        old = entry[2].get(index) if entry is not None else None
        grow = size - (len(old.body.data) + self.packet_overhead if old is not None else 0)
        if self.bytes + grow > self.max_bytes:
            raise JT808Error("limit", "%d bytes already in reassembly, %d more is over the limit of %d"
                             % (self.bytes, size, self.max_bytes))
        if entry is None:
            entry = self._pending[key] = [now, total, {}, 0]
        entry[0] = now
        entry[2][index] = msg
        entry[3] += grow
        self.bytes += grow
        if len(entry[2]) < total:
            return None
        self._drop(key)
        parts = [entry[2][i] for i in range(1, total + 1)]
        first = parts[0]
        data = b"".join(p.body.data for p in parts)
        body = Raw(data) if first.encryption else decode_body(first.msg_id, data, first.version)
        return Message(first.msg_id, first.phone, body, first.flow, first.version, None,
                       first.encryption, first.protocol_version)

    def _drop(self, key):
        entry = self._pending.pop(key)
        self.bytes -= entry[3]

    def missing(self, phone, msg_id):
        """Packet indexes still missing (for a 0x8003 retransmission request)."""
        entry = self._pending.get((phone, msg_id))
        if entry is None:
            return []
        return [i for i in range(1, entry[1] + 1) if i not in entry[2]]

    def expire(self, now=None):
        now = self.clock() if now is None else now
        stale = [k for k, e in self._pending.items() if now - e[0] > self.timeout]
        for k in stale:
            self._drop(k)
        return stale

    def clear(self):
        """Forget everything (the connection is gone)."""
        self._pending.clear()
        self.bytes = 0

    def __len__(self):
        return len(self._pending)


# --------------------------------------------------------------------------
# builders for the server and the terminal simulator

def _reply(to, msg_id, body, flow):
    return Message(msg_id, to.phone, body, flow, to.version, None, 0, to.protocol_version)


def general_response(to, result=0, flow=0):
    """0x8001 answering message `to` (result: 0 ok, 1 fail, 2 bad, 3 unsupported,
    4 alarm acknowledged)."""
    return _reply(to, 0x8001, GeneralResponse(to.flow, to.msg_id, result), flow)


def terminal_response(to, result=0, flow=0):
    """0x0001 answering a platform message `to` (for the terminal simulator)."""
    return _reply(to, 0x0001, GeneralResponse(to.flow, to.msg_id, result), flow)


def register_response(to, result=0, auth_code=None, flow=0):
    """0x8100 answering registration `to`; the auth code only with result 0."""
    return _reply(to, 0x8100, RegisterResponse(to.flow, result,
                                               auth_code if result == 0 else None), flow)
