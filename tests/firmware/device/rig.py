# What the device-side allocation measurements share (the script's folder is on
# MicroPython's sys.path): a persistent queue whose events are delivered at once,
# pushed, read and acknowledged as the reporter does after an ACK.
from core.equeue import EventQueue


class DeliveredAtOnce:
    def __init__(self, path, clock):
        self.q = EventQueue(path, 1024, clock)
        self.n = 0                      # events emitted

    def emit(self, qual, code, part, zone):
        q = self.q
        q.push(qual, code, part, zone)
        s = q.next()
        q.read(s)
        q.ack(s)
        self.n += 1
