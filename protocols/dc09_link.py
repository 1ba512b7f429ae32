# SIA DC-09 written once: the parts of a frame both ends write the same way (the
# header up to the data's bracket, the seal of CRC and length, digits in and out,
# the civil date, the pad alphabet, the AES backend, the ADM-CID data), and Link,
# the panel's end of the link: its own frames (encrypted ADM-CID and NULL) built
# and its answers (ACK, NAK, DUH) read in buffers made once.
#
# protocols.dc09 (the codec: every token, decode, refusals with reasons) takes its
# helpers from here. This module takes nothing from dc09: a panel whose link is
# encrypted loads only this for its own traffic, never the codec (about 20 KB of
# heap as .mpy; the reporter loads it for a frame Link does not read).
#
# After Link's __init__ neither build() nor is_ack()
# allocates on MicroPython (tests/mpy/test_dc09_builder.py and
# tests/firmware/test_memory.py run them with the heap locked): digits and hex are
# written and read byte by byte, the date is one small int (civil), AES-CBC is
# chained by hand over one ECB cipher object per direction, and the pad is AES over a counter seeded once from
# os.urandom (os.urandom() would allocate per frame). Byte for byte what
# dc09.encode() writes (tests/mpy/test_dc09_builder.py, both interpreters).
# Names are few on purpose: each one is an interned string in the panel's RAM.
# Runs on CPython and MicroPython.
import os

from protocols.crc import crc16_arc

# Pad bytes: printable ASCII without the three characters the receiver splits on.
PAD_ALPHABET = b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ\\^_`abcdefghijklmnopqrstuvwxyz{}~"
_HEX = b"0123456789ABCDEF"
HEX_DIGITS = "0123456789ABCDEFabcdef"
# The standard makes accounts hex; panels in the field also use letters past F
# (a captured one reports as account XTRM189), so accounts take any letter or digit.
ACCOUNT_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

try:
    from cryptolib import aes  # MicroPython
    # cryptolib takes 128- and 256-bit keys only: a panel cannot use AES-192.
    AES_KEY_SIZES = (16, 32)
except ImportError:
    # CPython: the same over the cryptography package, in a module of its own so
    # that its names are not interned strings in a device's RAM
    from protocols.aes_cryptography import aes, AES_KEY_SIZES  # noqa: F401

def fits(value, n, kind):
    """`value` is a str of 1 to `n` characters, each one of `kind`."""
    return isinstance(value, str) and 0 < len(value) <= n and not value.strip(kind)


def head(token, seq, receiver, prefix, account, encrypt):
    """The frame's body from the id's quote to the data's bracket:
    "*TOKEN"SSSS[Rrcvr]Lpref#ACCT[ (the standard's NAK marks the account with A)."""
    return '"%s%s"%04d%sL%s%s%s[' % (
        "*" if encrypt else "", token, seq, "" if receiver is None else "R" + receiver,
        prefix, "A" if token == "NAK" else "#", account)


def put(b, at, v, width, base):
    """Write `v` as `width` digits in `base` (10 or 16, upper-case) at b[at:]."""
    i = at + width - 1
    while i >= at:
        b[i] = _HEX[v % base]
        v //= base
        i -= 1


def digits(b, i, n, base):
    """The value of the `n` digits in `base` (10, or 16 in either case) at b[i:]
    (bytes-like), or -1 when one is not such a digit."""
    v = 0
    for j in range(i, i + n):
        c = b[j] - 48
        if c > 9:
            c = (b[j] | 32) - 87
            if c < 10:
                return -1
        if c < 0 or c >= base:
            return -1
        v = v * base + c
    return v


def seal(f, n):
    """Write into f[1:9] the CRC-16/ARC and the length (4 hex digits each) of the
    frame f[:n]: LF, those 8, the body, CR. CRC and length are put apart: their
    32 bits as one int would not be a small int on a 32-bit port (an allocation)."""
    put(f, 1, crc16_arc(f, 9, n - 1), 4, 16)
    put(f, 5, n - 10, 4, 16)


def sealed(f, n):
    """f[:n] is LF, CRC and length in hex, a quote, ... CR, with CRC and length right."""
    return (n >= 16 and f[0] == 0x0A and f[n - 1] == 0x0D and f[9] == 0x22
            and digits(f, 5, 4, 16) == n - 10 and digits(f, 1, 4, 16) == crc16_arc(f, 9, n - 1))


# ---------------------------------------------------------------- the civil date
# Howard Hinnant's algorithms: days since 1970-01-01, no time module needed (the
# ESP32 port counts its epoch from 2000, so time.mktime would disagree).

def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil(n):
    """The date `n` days after 1970-01-01 as one small int, (year << 9) | (month << 5)
    | day: a tuple would be an allocation per frame on the panel."""
    z = n + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + (3 if mp < 10 else -9)
    return ((yoe + era * 400 + (m <= 2)) << 9) | (m << 5) | (doy - (153 * mp + 2) // 5 + 1)


def put_time(b, at, secs, epoch):
    """Write hh:mm:ss,MM-DD-YYYY at b[at:at + 19]: `secs` seconds after the day
    `epoch` days after 1970-01-01 (the port's epoch: 0 on unix, 10957 on the ESP32,
    which keeps the seconds small ints on a 32-bit port until 2034)."""
    d = secs // 86400
    secs -= d * 86400
    d = civil(d + epoch)
    put(b, at, secs // 3600, 2, 10)
    b[at + 2] = 0x3A                               # ":"
    put(b, at + 3, secs % 3600 // 60, 2, 10)
    b[at + 5] = 0x3A
    put(b, at + 6, secs % 60, 2, 10)
    b[at + 8] = 0x2C                               # ","
    put(b, at + 9, (d >> 5) & 15, 2, 10)
    b[at + 11] = 0x2D                              # "-"
    put(b, at + 12, d & 31, 2, 10)
    b[at + 14] = 0x2D
    put(b, at + 15, d >> 9, 4, 10)


# ---------------------------------------------------------------- ADM-CID data

def put_cid(b, at, q, code, part, zone):
    """Write Contact ID as DC-09 carries it after "#ACCT|", QEEE GG ZZZ, at
    b[at:at + 11]; ValueError for a field wider than its digits."""
    if not (0 <= q <= 9 and 0 <= code <= 999 and 0 <= part <= 99 and 0 <= zone <= 999):
        raise ValueError("ADM-CID")
    put(b, at, q, 1, 10)
    put(b, at + 1, code, 3, 10)
    b[at + 4] = 0x20
    put(b, at + 5, part, 2, 10)
    b[at + 7] = 0x20
    put(b, at + 8, zone, 3, 10)


def cid_data(account, q, code, part, zone):
    """The data of an ADM-CID frame, #ACCT|QEEE GG ZZZ (contactid.dc09_data, the
    reporter's frames without a key)."""
    b = bytearray(b"#" + account.encode() + b"|QEEE GG ZZZ")
    put_cid(b, len(b) - 11, q, code, part, zone)
    return bytes(b).decode()


# ---------------------------------------------------------------- the panel's end

class Link:
    """build(): the encrypted frame of one event (ADM-CID: "#ACCT|QEEE GG ZZZ",
    [Hhh:mm:ss,MM-DD-YYYY] of the event, the send timestamp) or of a link test
    (token "NULL": the timestamp only), byte for byte what dc09.encode() writes for
    that message and pad, into self.out (self.view: a memoryview of it).
    is_ack(): dc09.decode() + is_ack_for() for an answer; refused(): a NAK's time."""

    def __init__(self, key, account, receiver=None, prefix="0", epoch_days=0, token="ADM-CID"):
        # `key`: the AES key, or a Link on it (the events' beside the NULLs'), whose
        # ciphers and scratch, about 1 KB, then serve both, one frame at a time.
        # What dc09.encode() refuses, refused here (ValueError).
        twin = key if isinstance(key, Link) else None
        if ((twin is None and len(key) not in AES_KEY_SIZES) or not fits(account, 16, ACCOUNT_CHARS)
                or not fits(prefix, 6, HEX_DIGITS) or not fits(receiver or "0", 6, HEX_DIGITS)):
            raise ValueError("key/account/prefix/receiver")
        h = head(token, 0, receiver, prefix, account, True).encode()
        # clear text: pad |#ACCT|QEEE GG ZZZ][Hhh:mm:ss,MM-DD-YYYY]_hh:mm:ss,MM-DD-YYYY
        # (a NULL: pad ]_hh:mm:ss,MM-DD-YYYY)
        if token == "NULL":
            clear = b"]_" + bytes(19)
        else:
            clear = b"|" + cid_data(account, 0, 0, 0, 0).encode() + b"][H" + bytes(19) + b"]_" + bytes(19)
        pad = 16 + (-len(clear)) % 16
        self.pad = pad
        self.plain = bytearray(pad) + clear
        self.out = bytearray(10 + len(h) + 2 * len(self.plain))       # LF, 8, head, hex, CR
        self.out[0] = 0x0A
        self.out[9:9 + len(h)] = h
        self.out[-1] = 0x0D
        self.view = memoryview(self.out)
        # Contact ID's QEEE, where the hex begins, the epoch, the sequence's last digit,
        # the timestamp
        self.at = (pad + len(account) + 3 if token != "NULL" else -1, 9 + len(h), epoch_days,
                   15 + len(token), len(self.plain) - 19)
        if twin is not None:
            self.s, self.e, self.d = twin.s, twin.e, twin.d
            return
        self.acct = account.upper().encode()    # is_ack's: the events' Link reads every answer
        self.s = (bytearray(16), bytearray(16), bytearray(os.urandom(16)), bytearray(16))
        # ECB, one object per direction (a cryptolib object that encrypted cannot
        # decrypt); chained by hand as CBC (its CBC object cannot restart its IV)
        self.e = aes(key, 1)
        self.d = aes(key, 1)

    def build(self, seq, qualifier, code, partition, zone, when, now, pad=None):
        """seq 1-9999; `when` (the event; ignored for a NULL) and `now` (the
        timestamp) in seconds since the day epoch_days after 1970-01-01 (put_time).
        `pad`: tests only, the bytes dc09.encode() would draw. Returns the frame's
        length."""
        p = self.plain
        blk, enc, ctr, rnd = self.s
        n = self.pad
        i = 0
        while i < n:                               # the pad
            if pad is not None:
                p[i] = pad[i]
                i += 1
                continue
            j = 0
            while j < 16:                          # counter += 1
                ctr[j] = (ctr[j] + 1) & 0xFF
                if ctr[j]:
                    break
                j += 1
            self.e.encrypt(ctr, rnd)
            j = 0
            while j < 16 and i < n:
                p[i] = PAD_ALPHABET[rnd[j] % len(PAD_ALPHABET)]
                i += 1
                j += 1
        at, hx, epoch, sq, ts = self.at
        if at >= 0:
            put_cid(p, at, qualifier, code, partition, zone)
            put_time(p, at + 14, when, epoch)      # [H...]
        put_time(p, ts, now, epoch)                # _timestamp
        out = self.out
        for j in range(16):
            enc[j] = 0
        k = 0
        n = len(p)
        while k < n:                               # AES-CBC, zero IV, hex into the frame
            for j in range(16):
                blk[j] = p[k + j] ^ enc[j]
            self.e.encrypt(blk, enc)
            for j in range(16):
                out[hx] = _HEX[enc[j] >> 4]
                out[hx + 1] = _HEX[enc[j] & 15]
                hx += 2
            k += 16
        put(out, sq - 3, seq, 4, 10)               # the sequence after '"*ADM-CID"'
        n = len(out)
        seal(out, n)
        return n

    def refused(self, f, n):
        """A DUH: 0. A NAK: the receiver's time in seconds since 1970-01-01 UTC (0 if
        it has none). Else None: not a NAK/DUH this can read (the codec judges it)."""
        if not sealed(f, n):
            return None
        if f[10:14] == b'DUH"':
            return 0
        if f[10:14] != b'NAK"':
            return None
        i = f.find(b"]_", 0, n) + 2                # _hh:mm:ss,MM-DD-YYYY
        if i < 2:
            return 0
        if n - 1 - i != 19:
            return None
        y = digits(f, i + 15, 4, 10)
        m = digits(f, i + 9, 2, 10)
        d = digits(f, i + 12, 2, 10)
        hh = digits(f, i, 2, 10)
        mi = digits(f, i + 3, 2, 10)
        ss = digits(f, i + 6, 2, 10)
        if min(y, m, d, hh, mi, ss) < 0:
            return None
        return days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss

    def is_ack(self, f, n, seq):
        """True when frame f[:n] (LF ... CR) is the ACK of `seq` for our account: CRC
        and length right, token ACK, or *ACK whose clear text (decrypted with the key)
        holds "]" and is printable after it, as dc09.decode() requires; same sequence
        and account (any case), as dc09.is_ack_for()."""
        if not sealed(f, n):
            return False
        i = 11 if f[10] == 0x2A else 10            # "*": encrypted
        if f[i] != 0x41 or f[i + 1] != 0x43 or f[i + 2] != 0x4B or f[i + 3] != 0x22:
            return False                           # 'ACK"'
        if digits(f, i + 4, 4, 10) != seq:
            return False
        i += 8
        while i < n and f[i] != 0x23:              # "#" account
            i += 1
        a = self.acct
        if i + len(a) + 2 >= n:                    # "#ACCT[" and more before the CR
            return False
        for j in range(len(a)):
            i += 1
            c = f[i]
            if 0x61 <= c <= 0x7A:
                c -= 32
            if c != a[j]:
                return False
        i += 1
        if f[i] != 0x5B:                           # "["
            return False
        if f[10] != 0x2A:
            return True
        k = i + 1
        end = n - 1
        if (end - k) % 32 or end - k > 256:
            return False
        blk, clr, _, prev = self.s
        for j in range(16):
            prev[j] = 0
        seen = False
        while k < end:
            for j in range(16):
                c = digits(f, k, 2, 16)
                if c < 0:
                    return False
                blk[j] = c
                k += 2
            self.d.decrypt(blk, clr)
            for j in range(16):
                c = clr[j] ^ prev[j]
                prev[j] = blk[j]
                if c == 0x5D:
                    seen = True
                elif seen and (c < 0x20 or c > 0x7E):
                    return False
        return seen
