# Persistent event queue on flash: a file of fixed-size slots, one event per slot.
#
# Slot (24 bytes):
#   0 magic 0xA5 | 1 length (16) | 2..17 payload | 18..19 CRC-16/ARC of bytes 0..17
#   | 20 state (0xFF pending, 0x00 done) | 21..23 0xFF
# payload: seq u32 | time u32 | qualifier u8 | partition u8 | code u16 | zone u16
#          | priority u8 | flags u8            (little-endian)
# priority: the Contact ID tier of the code (protocols/contactid_table.py: 0 life
# safety, 1 trouble, 2 routine), the same table the gateway routes by. It is kept
# for diagnostics; at boot a record is ranked from its code, so records written by
# firmware that counted priorities the other way (3 = alarm) are ranked right.
#
# Journal rules: a new record is written only into a free slot (done or invalid),
# in one write, then flushed: that is the commit. Acknowledging writes the single
# state byte (0xFF -> 0x00: on NOR flash a pure 1->0 program). A torn record fails
# the magic/length/CRC check and the slot counts as free; since only free slots are
# ever written, a torn write can only lose the record being written (uncommitted),
# never a committed one, and is never misread. Sequence numbers are monotonic
# across restarts (max valid seq + 1).
#
# Bounded: `capacity` slots (>= 1,000). When full, the lowest-priority oldest
# pending event is dropped (routine before troubles before alarms, the gateway's
# tiers); a new event of lower priority than everything queued is dropped instead.
# Every drop is counted and reported with Contact ID 624 (event log overflow).
#
# RAM: 3 bytes a slot (a rank byte: 0 free, else 1 + PRIORITY_ROUTINE - tier, higher
# is more urgent; the low 16 bits of seq: pending events span far less than 32,768
# seqs, so order is compared modulo 2^16), 3 KB for 1,024 slots;
# a 24-byte buffer reused for every read and write (no allocation per event).
import struct
from core.compat import const
from protocols.crc import crc16_arc
from protocols import contactid_table

SLOT = const(24)
_MAGIC = const(0xA5)
_PAYLOAD = const(16)
_STATE_OFF = const(20)
FMT = "<IIBBHHBB"

_CODE_OVERFLOW = const(624)


try:
    from array import array
except ImportError:  # pragma: no cover
    array = None


class EventQueue:
    def __init__(self, path, capacity=1024, clock=None, on_log=None):
        if capacity < 1:
            raise ValueError("capacity")
        self.path = path
        self.capacity = capacity
        self.clock = clock
        self.on_log = on_log
        self._buf = bytearray(SLOT)
        self._mv = memoryview(self._buf)
        self._head = self._mv[0:18]              # what the CRC covers
        self._one = bytearray(1)
        self.meta = bytearray(capacity)          # 0 free, else 1 + PRIORITY_ROUTINE - tier
        self.seqs = array("H", bytes(2 * capacity))
        self.next_seq = 1
        self.pos = 0                             # next slot to try (round robin)
        self.pending = 0
        self.dropped = 0                         # since boot
        self.discarded = 0                       # torn/corrupt slots found at boot
        self._overflow_slot = -1
        self.fields = [0, 0, 0, 0, 0, 0, 0, 0]   # last record read: see FMT
        self._open()

    # -- storage ----------------------------------------------------------
    def _open(self):
        try:
            self.f = open(self.path, "r+b")
        except OSError:
            f = open(self.path, "wb")
            f.close()
            self.f = open(self.path, "r+b")
        f = self.f
        buf = self._buf
        best = 0
        best_slot = -1
        for i in range(self.capacity):
            f.seek(i * SLOT)
            n = f.readinto(buf)
            if not n:
                break
            if n < SLOT:
                self.discarded += 1
                break
            if not self._valid():
                if buf[0] != 0 or buf[1] != 0:   # not a never-written hole
                    self.discarded += 1
                continue
            seq = struct.unpack_from("<I", buf, 2)[0]
            self.seqs[i] = seq & 0xFFFF
            if buf[_STATE_OFF] == 0xFF:
                code = struct.unpack_from("<H", buf, 12)[0]
                self.meta[i] = 1 + contactid_table.PRIORITY_ROUTINE - contactid_table.priority(code)
                self.pending += 1
                if code == _CODE_OVERFLOW:
                    self._overflow_slot = i
            if seq > best:
                best = seq
                best_slot = i
        self.next_seq = best + 1
        self.pos = (best_slot + 1) % self.capacity

    def _valid(self):
        b = self._buf
        if b[0] != _MAGIC or b[1] != _PAYLOAD:
            return False
        return crc16_arc(self._head) == (b[18] | (b[19] << 8))

    def _write_slot(self, i):
        f = self.f
        f.seek(i * SLOT)
        f.write(self._buf)
        f.flush()

    def _set_done(self, i):
        self._one[0] = 0
        f = self.f
        f.seek(i * SLOT + _STATE_OFF)
        f.write(self._one)
        f.flush()
        if self.meta[i]:
            self.pending -= 1
        self.meta[i] = 0

    def close(self):
        try:
            self.f.close()
        except Exception:
            pass

    # -- API --------------------------------------------------------------
    def push(self, qualifier, code, partition=0, zone=0, flags=0, when=None):
        """Commit one event; returns its seq, or 0 when it was itself dropped. Its
        priority is the code's (contactid_table.priority), nothing else."""
        prio = contactid_table.priority(code)
        slot = self._free_slot(prio)
        if slot < 0:
            self.dropped += 1
            self._note_drop()
            return 0
        seq = self._write(slot, qualifier, code, partition, zone, prio, flags, when)
        if self._drop_noted:
            self._note_drop()
        return seq

    _drop_noted = False

    def _write(self, slot, qualifier, code, partition, zone, prio, flags, when):
        seq = self.next_seq
        self.next_seq = seq + 1
        if when is None:
            when = self.clock.time() if self.clock else 0
        b = self._buf
        b[0] = _MAGIC
        b[1] = _PAYLOAD
        struct.pack_into(FMT, b, 2, seq, when & 0xFFFFFFFF, qualifier, partition, code, zone, prio, flags)
        c = crc16_arc(self._head)
        b[18] = c & 0xFF
        b[19] = c >> 8
        b[20] = 0xFF
        b[21] = 0xFF
        b[22] = 0xFF
        b[23] = 0xFF
        self._write_slot(slot)
        self.meta[slot] = 1 + contactid_table.PRIORITY_ROUTINE - prio
        self.seqs[slot] = seq & 0xFFFF
        self.pending += 1
        self.pos = (slot + 1) % self.capacity
        if code == _CODE_OVERFLOW:
            self._overflow_slot = slot
        if self.on_log:
            self.on_log(seq, qualifier, code, partition, zone)
        return seq

    def _free_slot(self, prio):
        cap = self.capacity
        meta = self.meta
        i = self.pos
        for _ in range(cap):
            if not meta[i]:
                return i
            i += 1
            if i == cap:
                i = 0
        # full: evict the lowest-priority, oldest pending event
        victim = -1
        vp = 255
        vs = 0
        seqs = self.seqs
        for i in range(cap):
            m = meta[i]
            if m and (m < vp or (m == vp and (seqs[i] - vs) & 0xFFFF > 0x8000)):
                victim = i
                vp = m
                vs = seqs[i]
        if victim < 0 or vp > 1 + contactid_table.PRIORITY_ROUTINE - prio:   # everything queued matters more
            return -1
        self._set_done(victim)
        self.dropped += 1
        self._drop_noted = True
        return victim

    def _note_drop(self):
        """Report drops: one pending 624 event at a time, zone = drops so far (<= 999)."""
        self._drop_noted = False
        o = self._overflow_slot
        if o >= 0 and self.meta[o]:
            return
        n = self.dropped if self.dropped < 999 else 999
        slot = self._free_slot(contactid_table.PRIORITY_TROUBLE)
        if slot >= 0:
            self._write(slot, 1, _CODE_OVERFLOW, 0, n, contactid_table.PRIORITY_TROUBLE, 0, None)
        self._drop_noted = False

    def next(self):
        """Slot of the next event to send (highest priority, then oldest), or -1."""
        if not self.pending:
            return -1
        meta = self.meta
        seqs = self.seqs
        best = -1
        bp = 0
        bs = 0
        for i in range(self.capacity):
            m = meta[i]
            if m and (m > bp or (m == bp and (seqs[i] - bs) & 0xFFFF > 0x8000)):
                best = i
                bp = m
                bs = seqs[i]
        return best

    def read(self, slot):
        """Read a slot into self.fields [seq, time, qualifier, partition, code, zone,
        prio, flags]; False if the slot does not hold a valid record."""
        f = self.f
        f.seek(slot * SLOT)
        if f.readinto(self._buf) != SLOT or not self._valid():
            return False
        b = self._buf                            # by hand: no tuple per read
        fl = self.fields
        fl[0] = b[2] | (b[3] << 8) | (b[4] << 16) | (b[5] << 24)
        fl[1] = b[6] | (b[7] << 8) | (b[8] << 16) | (b[9] << 24)
        fl[2] = b[10]
        fl[3] = b[11]
        fl[4] = b[12] | (b[13] << 8)
        fl[5] = b[14] | (b[15] << 8)
        fl[6] = b[16]
        fl[7] = b[17]
        return True

    def ack(self, slot, seq=None):
        """Remove a delivered event (only if the slot still holds `seq`)."""
        if seq is not None and self.seqs[slot] != seq & 0xFFFF:
            return False
        if not self.meta[slot]:
            return False
        self._set_done(slot)
        return True

    def pending_seqs(self):
        """Sorted seqs of every pending event (diagnostics and tests)."""
        out = []
        for i in range(self.capacity):
            if self.meta[i] and self.read(i):
                out.append(self.fields[0])
        out.sort()
        return out
