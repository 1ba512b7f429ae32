# SIA DC-09: the frame alarm panels send to a receiver over TCP or UDP.
# Runs unchanged on CPython and MicroPython (no dataclasses, no typing, no
# f-string format specs); AES through `cryptolib` on MicroPython and the
# `cryptography` package on CPython.
#
#   LF | CRC (4 hex) | 0LLL (length, 4 hex) | "id" | seq | [Rrcvr] | Lpref | #acct |
#      [data] | [xdata]... | [_HH:MM:SS,MM-DD-YYYY] | CR
#
# CRC (CRC-16/ARC) and length cover everything from the opening quote of the id to
# the byte before CR. An encrypted frame ("*ADM-CID") carries, after its "[", the
# hex of AES-CBC(zero IV) over: pad | data ] xdata _timestamp, where the pad is
# 16-31 random bytes bringing the total to a multiple of 16.
#
# What a frame is made of (header, seal, digits, dates, pad, AES, ADM-CID data) is
# written once, in dc09_link.py, which the panel's in-place builder (Link) shares:
# this module is the codec around it.
import binascii
import os

from protocols.crc import crc16_arc
from protocols.dc09_link import (ACCOUNT_CHARS, AES_KEY_SIZES, HEX_DIGITS, PAD_ALPHABET, aes, civil,
                                 days_from_civil, digits, fits, head, seal)

try:
    import time
except ImportError:  # pragma: no cover
    time = None

LF = 0x0A
CR = 0x0D

# Tokens named by DC-09 (2013 and 2026) and the data formats commonly carried.
TOKENS = ("SIA-DCS", "ADM-CID", "NULL", "ACK", "NAK", "DUH", "RSP", "XNM",
          "SIA-PUL", "ACR-SF", "ADM-41E", "ADM-42", "ADM-43", "SCN-0", "SCN-1", "SCN-2",
          "SK-FSK1", "SUR-OFF", "FSK-20", "MODEM", "4-2", "4-1")

# Responses are never sent encrypted when they are NAK or DUH (the receiver may not
# know the key, or the key may be what is wrong).
_NEVER_ENCRYPTED = ("NAK", "DUH")

DEFAULT_AHEAD = 20   # a message may be stamped up to 20 s ahead of the receiver's clock
DEFAULT_BEHIND = 40  # ... and up to 40 s behind it (DC-09-2026 5.5.1.9)


class DC09Error(ValueError):
    """A frame that cannot be decoded or encoded. `reason` is one of
    crc, length, format, token, key, timestamp, account."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.reason, self.message)


class Message:
    """One DC-09 message. `data` is the text inside the data brackets
    (e.g. "#1234|1130 01 015"); `xdata` a list of (letter, value) pairs."""

    def __init__(self, token, seq=0, account="0", receiver=None, prefix="0", data="",
                 xdata=None, timestamp=None, encrypted=False):
        self.token = token
        self.seq = seq
        self.account = account
        self.receiver = receiver
        self.prefix = prefix
        self.data = data
        self.xdata = xdata if xdata is not None else []
        self.timestamp = timestamp
        self.encrypted = encrypted

    def contact_id(self):
        """The Contact ID report of an ADM-CID message."""
        if self.token != "ADM-CID":
            raise DC09Error("token", "%s carries no Contact ID report" % self.token)
        # Imported here: a panel that only sends frames need not hold contactid in
        # RAM (about 12 KB on the 64-bit unix port).
        from protocols import contactid
        try:
            return contactid.parse_dc09_data(self.data, self.account)
        except contactid.ContactIDError as e:
            raise DC09Error("format", str(e))

    def sia_events(self):
        """The events of a SIA-DCS message (see parse_sia_data)."""
        if self.token != "SIA-DCS":
            raise DC09Error("token", "%s carries no SIA DC-03 data" % self.token)
        return parse_sia_data(self.data)

    def position(self):
        return parse_position(self.xdata)

    def __eq__(self, other):
        return (isinstance(other, Message) and self.token == other.token
                and self.seq == other.seq and self.account == other.account
                and self.receiver == other.receiver and self.prefix == other.prefix
                and self.data == other.data and list(self.xdata) == list(other.xdata)
                and _ts(self.timestamp) == _ts(other.timestamp)
                and self.encrypted == other.encrypted)

    def __repr__(self):
        return "Message(%r, seq=%d, account=%r, receiver=%r, prefix=%r, data=%r, xdata=%r, timestamp=%r, encrypted=%r)" % (
            self.token, self.seq, self.account, self.receiver, self.prefix, self.data,
            self.xdata, self.timestamp, self.encrypted)


def _aes_cbc(key, data, encrypt):
    _check_key(key)
    cipher = aes(key, 2, bytes(16))     # zero IV; a new object: each keeps its chain
    return cipher.encrypt(data) if encrypt else cipher.decrypt(data)


def _check_key(key):
    if len(key) not in AES_KEY_SIZES:
        raise DC09Error("key", "AES keys here are %s bytes, not %d" % (
            "/".join(str(n) for n in AES_KEY_SIZES), len(key)))


def _ts(t):
    return None if t is None else tuple(t)


# ---------------------------------------------------------------- keys

def key_from_hex(text):
    """The standard's convention: the key is binary, written as 32/48/64 hex digits."""
    try:
        key = binascii.unhexlify(text.strip())
    except (ValueError, TypeError):
        raise DC09Error("key", "a hex key must be hex digits (0-9, A-F)")
    if len(key) not in (16, 24, 32):
        raise DC09Error("key", "a hex key is 32, 48 or 64 hex digits (AES-128/192/256), not %d" % (2 * len(key)))
    return key


def key_from_text(text):
    """The convention of pysiaalarm and several panels: the 16/24/32 characters typed
    into the panel are themselves the key bytes."""
    key = text.encode()
    if len(key) not in (16, 24, 32):
        raise DC09Error("key", "a text key is 16, 24 or 32 characters (AES-128/192/256), not %d" % len(key))
    return key


# ---------------------------------------------------------------- time

def to_seconds(ts):
    """Seconds since 1970-01-01 UTC of a (Y, M, D, h, m, s) tuple."""
    return days_from_civil(ts[0], ts[1], ts[2]) * 86400 + ts[3] * 3600 + ts[4] * 60 + ts[5]


def from_seconds(n):
    """(Y, M, D, h, m, s) UTC of seconds since 1970-01-01."""
    days, rem = divmod(int(n), 86400)
    d = civil(days)
    return (d >> 9, (d >> 5) & 15, d & 31, rem // 3600, rem % 3600 // 60, rem % 60)


def timestamp_now():
    """Current UTC time as (Y, M, D, h, m, s). gmtime gives calendar fields on every
    port whatever its epoch."""
    return tuple(time.gmtime()[:6])


def format_timestamp(ts):
    return "%02d:%02d:%02d,%02d-%02d-%04d" % (ts[3], ts[4], ts[5], ts[1], ts[2], ts[0])


def parse_timestamp(text):
    """`HH:MM:SS,MM-DD-YYYY` (without the leading underscore) to a tuple."""
    if len(text) != 19 or text[2] != ":" or text[5] != ":" or text[8] != "," \
            or text[11] != "-" or text[14] != "-":
        raise DC09Error("timestamp", "timestamp must be HH:MM:SS,MM-DD-YYYY, not %r" % text)
    try:
        hh, mi, ss = int(text[0:2]), int(text[3:5]), int(text[6:8])
        mo, dd, yy = int(text[9:11]), int(text[12:14]), int(text[15:19])
    except ValueError:
        raise DC09Error("timestamp", "timestamp has a non-digit: %r" % text)
    if not (1 <= mo <= 12 and 1 <= dd <= _month_days(yy, mo) and hh < 24 and mi < 60 and ss < 61):
        raise DC09Error("timestamp", "timestamp is not a valid date and time: %r" % text)
    return (yy, mo, dd, hh, mi, ss)


def _month_days(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def check_timestamp(ts, now, ahead=DEFAULT_AHEAD, behind=DEFAULT_BEHIND):
    """Replay protection: refuse a message stamped outside [now - behind, now + ahead]."""
    if ts is None:
        raise DC09Error("timestamp", "message has no timestamp")
    diff = to_seconds(ts) - to_seconds(now)
    if diff > ahead:
        raise DC09Error("timestamp", "timestamp is %d s ahead of the receiver (window +%d s)" % (diff, ahead))
    if diff < -behind:
        raise DC09Error("timestamp", "timestamp is %d s behind the receiver (window -%d s)" % (-diff, behind))


# ---------------------------------------------------------------- data helpers
# Positions ([X…][Y…]) and SIA DC-03 data live in dc09_data.py: a panel that only
# sends Contact ID never loads them (they cost it about 10 KB of RAM).

def position_xdata(lat, lon):
    from protocols.dc09_data import position_xdata as build
    return build(lat, lon)


def parse_position(xdata):
    from protocols.dc09_data import parse_position as parse
    return parse(xdata)


def parse_sia_data(data):
    from protocols.dc09_data import parse_sia_data as parse
    return parse(data)


# ---------------------------------------------------------------- encode

def _pad(n):
    rnd = os.urandom(n)
    size = len(PAD_ALPHABET)
    return bytes(PAD_ALPHABET[b % size] for b in rnd)


def _body_after_bracket(msg):
    """Everything after the data's opening bracket, in clear text."""
    parts = [msg.data, "]"]
    for letter, value in msg.xdata:
        parts.append("[" + letter + value + "]")
    if msg.timestamp is not None:
        parts.append("_" + format_timestamp(msg.timestamp))
    return "".join(parts)


def encode(msg, key=None):
    """The whole frame (LF ... CR) as bytes. With a key (16, 24 or 32 bytes) the
    message is sent encrypted and must carry a timestamp."""
    if msg.token not in TOKENS:
        raise DC09Error("token", "unknown id token %r" % (msg.token,))
    if not (0 <= msg.seq <= 9999):
        raise DC09Error("format", "sequence must be 0000-9999, not %r" % (msg.seq,))
    _check_hex("account", msg.account, 16)
    _check_hex("prefix", msg.prefix, 6)
    if msg.receiver is not None:
        _check_hex("receiver", msg.receiver, 6)
    for ch in msg.data:
        if ch in "[]" or not (" " <= ch <= "~"):
            raise DC09Error("format", "data may hold printable ASCII without brackets: %r" % msg.data)
    for letter, value in msg.xdata:
        if len(letter) != 1 or not ("A" <= letter <= "Z") or "[" in value or "]" in value:
            raise DC09Error("format", "bad extended data [%s%s]" % (letter, value))
    encrypt = key is not None and msg.token not in _NEVER_ENCRYPTED
    start = head(msg.token, msg.seq, msg.receiver, msg.prefix, msg.account, encrypt)
    if encrypt:
        if msg.timestamp is None:
            raise DC09Error("timestamp", "an encrypted message must carry a timestamp")
        clear = _body_after_bracket(msg).encode()
        # "|" separates pad and data; a message with empty data has none (DC-09-2026 5.4.4.3).
        sep = b"|" if msg.data else b""
        used = len(sep) + len(clear)
        pad_len = 16 + (-used) % 16
        plain = _pad(pad_len) + sep + clear
        tail = binascii.hexlify(_aes_cbc(key, plain, True)).upper()
        body = start.encode() + tail
    else:
        body = (start + _body_after_bracket(msg)).encode()
    if len(body) > 0xFFF:
        raise DC09Error("length", "frame body is %d bytes, the length field holds at most 4095" % len(body))
    frame = bytearray(10 + len(body))
    frame[0] = LF
    frame[9:-1] = body
    frame[-1] = CR
    seal(frame, len(frame))
    return bytes(frame)


def _check_hex(field, value, n):
    account = field == "account"
    if not fits(value, n, ACCOUNT_CHARS if account else HEX_DIGITS):
        raise DC09Error("account" if account else "format", "%s must be 1-%d %s, not %r" % (
            field, n, "letters or digits" if account else "hex digits", value))


# ---------------------------------------------------------------- decode

def _header_layout(frame):
    """(crc, length, body start) of a frame starting with LF. Most panels write the CRC
    as 4 hex characters; some (Egardia, Trikdis) as 2 binary bytes."""
    if len(frame) > 9 and frame[9] == 0x22:       # LF CRC(4) 0LLL "
        crc = digits(frame, 1, 4, 16)
        length = digits(frame, 5, 4, 16)
        if crc < 0 or length < 0:
            raise DC09Error("format", "CRC and length must be hex: %r" % bytes(frame[1:9]))
        return crc, length, 9
    if len(frame) > 7 and frame[7] == 0x22:       # LF CRC(2 binary) 0LLL "
        length = digits(frame, 3, 4, 16)
        if length < 0:
            raise DC09Error("format", "length must be hex: %r" % bytes(frame[3:7]))
        return (frame[1] << 8) | frame[2], length, 7
    raise DC09Error("format", "no id token where the header ends")


def decode(frame, key=None):
    """Parse one frame (LF ... CR). `key` is the AES key (bytes), or a callable
    key(account) -> bytes or None, for encrypted frames. Raises DC09Error only."""
    try:
        return _decode(frame, key)
    except DC09Error:
        raise
    except (ValueError, IndexError, TypeError, UnicodeError) as e:
        raise DC09Error("format", "malformed frame: %s" % e)


def _decode(frame, key):
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise DC09Error("format", "a frame is bytes")
    frame = bytes(frame)
    if len(frame) < 12 or frame[0] != LF:
        raise DC09Error("format", "a frame starts with LF")
    if frame[-1] != CR:
        raise DC09Error("format", "a frame ends with CR")
    crc, length, start = _header_layout(frame)
    body = frame[start:-1]
    if length != len(body):
        raise DC09Error("length", "length field says %d, the frame holds %d" % (length, len(body)))
    if crc != crc16_arc(body):
        raise DC09Error("crc", "CRC %04X does not match %04X" % (crc, crc16_arc(body)))
    for b in body:
        if b < 0x20 or b > 0x7E:
            raise DC09Error("format", "frame body holds a non-printable byte 0x%02X" % b)
    text = body.decode()

    # "id" or "*id"
    end = text.find('"', 1)
    if end < 0:
        raise DC09Error("format", "id token has no closing quote")
    token = text[1:end]
    encrypted = token.startswith("*")
    if encrypted:
        token = token[1:]
    if token not in TOKENS:
        raise DC09Error("token", "unknown id token %r" % token)
    pos = end + 1

    seq_text = text[pos:pos + 4]
    if len(seq_text) != 4 or not seq_text.isdigit():
        raise DC09Error("format", "sequence must be 4 digits, not %r" % seq_text)
    seq = int(seq_text)
    pos += 4

    bracket = text.find("[", pos)
    if bracket < 0:
        raise DC09Error("format", "no data block")
    receiver, prefix, account = _parse_routing(text[pos:bracket])
    rest = text[bracket + 1:]

    if encrypted:
        if token in _NEVER_ENCRYPTED:
            raise DC09Error("format", "%s is never encrypted" % token)
        k = key(account) if callable(key) else key
        if k is None:
            raise DC09Error("key", "encrypted frame from account %s and no key for it" % account)
        rest = _decrypt(k, rest, account)

    data_end = rest.find("]")
    if data_end < 0:
        raise DC09Error("format", "data block has no closing bracket")
    data = rest[:data_end]
    pos = data_end + 1
    xdata = []
    while pos < len(rest) and rest[pos] == "[":
        close = rest.find("]", pos)
        if close < 0:
            raise DC09Error("format", "extended data has no closing bracket")
        block = rest[pos + 1:close]
        if not block:
            raise DC09Error("format", "empty extended data block")
        xdata.append((block[0], block[1:]))
        pos = close + 1
    timestamp = None
    if pos < len(rest):
        if rest[pos] != "_":
            raise DC09Error("format", "unexpected text after the data: %r" % rest[pos:])
        timestamp = parse_timestamp(rest[pos + 1:])
    if encrypted and timestamp is None:
        raise DC09Error("timestamp", "an encrypted message must carry a timestamp")
    return Message(token, seq, account, receiver, prefix, data, xdata, timestamp, encrypted)


def _parse_routing(text):
    """[Rrcvr] Lpref #acct, in the order the standard gives. Tolerates what peers
    send: pysiaalarm writes "None" for an absent receiver and its NAK puts L before R;
    the standard's NAK marks the account with A instead of #."""
    hash_at = text.find("#")
    if hash_at < 0:
        hash_at = text.rfind("A")    # NAK: R0L0A0 (prefix and receiver are hex too,
        if hash_at < 0:              # so the last A is the account's marker)
            raise DC09Error("account", "header has no #account")
    account = text[hash_at + 1:]
    head = text[:hash_at].replace("None", "")
    r_at = head.find("R")
    l_at = head.find("L")
    if l_at < 0:
        raise DC09Error("format", "header has no L prefix")
    receiver = None
    if r_at < 0:
        if l_at != 0:
            raise DC09Error("format", "unexpected %r before the prefix" % head[:l_at])
        prefix = head[1:]
    elif r_at < l_at:
        if r_at != 0:
            raise DC09Error("format", "unexpected %r before the receiver" % head[:r_at])
        receiver, prefix = head[1:l_at], head[l_at + 1:]
    else:
        if l_at != 0:
            raise DC09Error("format", "unexpected %r before the prefix" % head[:l_at])
        prefix, receiver = head[1:r_at], head[r_at + 1:]
    _check_hex("prefix", prefix, 6)
    if receiver is not None:
        _check_hex("receiver", receiver, 6)
    _check_hex("account", account, 16)
    return receiver, prefix, account


def _decrypt(key, hex_text, account):
    if not hex_text or len(hex_text) % 32:
        raise DC09Error("format", "encrypted body must be whole 16-byte blocks in hex")
    try:
        cipher = binascii.unhexlify(hex_text)
    except ValueError:
        raise DC09Error("format", "encrypted body is not hex")
    plain = _aes_cbc(key, cipher, False)
    # With the wrong key the clear text is noise: no "]" or bytes that are not text.
    close = plain.find(b"]")
    if close < 0:
        raise DC09Error("key", "decryption gave no data block: wrong key for account %s?" % account)
    bar = plain.find(b"|", 0, close)
    start = bar + 1 if bar >= 0 else close  # no "|": empty data, e.g. an ACK
    clear = plain[start:]
    for b in clear:
        if b < 0x20 or b > 0x7E:
            raise DC09Error("key", "decryption gave binary text: wrong key for account %s?" % account)
    return clear.decode()


# ---------------------------------------------------------------- responses

def make_ack(msg, timestamp=None):
    """The ACK for `msg`: same sequence, receiver, prefix and account, empty data;
    encrypted (with a timestamp) when the message was."""
    if msg.encrypted and timestamp is None:
        timestamp = timestamp_now()
    return Message("ACK", msg.seq, msg.account, msg.receiver, msg.prefix, "", None,
                   timestamp, msg.encrypted)


def make_nak(timestamp=None):
    """NAK for a frame that failed CRC, format or timestamp checks; it carries the
    receiver's time so a sender with a wrong clock can correct it."""
    return Message("NAK", 0, "0", "0", "0", "", None,
                   timestamp if timestamp is not None else timestamp_now(), False)


def make_duh(msg):
    """DUH: the frame was understood but the receiver cannot handle it."""
    return Message("DUH", msg.seq, msg.account, msg.receiver, msg.prefix, "", None, None, False)


def is_ack_for(ack, msg):
    """True when `ack` acknowledges `msg`: matched by sequence and account, not by
    receiver (pysiaalarm writes "None" there)."""
    return ack.token == "ACK" and ack.seq == msg.seq and ack.account.upper() == msg.account.upper()


# ---------------------------------------------------------------- stream framing

class FrameReader:
    """Splits a TCP byte stream into frames. Several frames may arrive in one segment
    (Ajax hubs do that) and a frame may be split across segments. Bytes before a
    frame's LF are dropped and counted; a frame longer than max_frame is dropped."""

    def __init__(self, max_frame=1024):
        self.max_frame = max_frame
        self.buf = bytearray()
        self.discarded = 0

    def feed(self, data):
        self.buf.extend(data)
        frames = []
        buf = self.buf
        while True:
            lf = buf.find(b"\n")
            if lf < 0:
                self.discarded += len(buf)
                buf[:] = b""
                break
            if lf:
                self.discarded += lf
                buf[:lf] = b""
            end = self._frame_end(buf)
            if end is None:          # need more bytes
                if len(buf) > self.max_frame:
                    self.discarded += 1
                    buf[:1] = b""    # drop this LF and look for the next one
                    continue
                break
            if end < 0:              # not a frame: drop up to the next LF, resync there
                cut = -end
                self.discarded += cut
                buf[:cut] = b""
                continue
            frames.append(bytes(buf[:end]))
            buf[:end] = b""
        return frames

    def _frame_end(self, buf):
        """Index just past the frame's CR; None when incomplete; -n when not a frame
        (drop n bytes: up to the next LF, where the next frame may start).

        The body is printable text (decode refuses anything else), so the first CR
        after the header ends the frame, whatever the length field says, and an LF
        before that CR means this frame was cut short and the next one starts at that
        LF. The length field is checked by decode, which NAKs a frame where it lies;
        trusting it here let one lying frame swallow the start of the next
        legitimate frame, which then got a NAK too. The search starts after the
        header, so a binary CRC holding a CR or LF byte is not mistaken for either."""
        if len(buf) < 10:
            return None
        if buf[9] == 0x22:           # LF CRC(4 hex) LLLL "
            start = 10
        elif buf[7] == 0x22:         # LF CRC(2 binary) LLLL "
            start = 8
        else:
            return -1
        cr = buf.find(b"\r", start)
        lf = buf.find(b"\n", start) if cr < 0 else buf.find(b"\n", start, cr)
        if lf >= 0:
            return -lf
        if cr < 0:
            return None if len(buf) <= self.max_frame else -1
        return cr + 1
