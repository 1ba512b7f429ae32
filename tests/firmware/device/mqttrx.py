# Device-side: core.mqtt.MQTT._receive, the broker's byte stream read by polling the
# socket, fed from a stream a real broker sent (captured by the pytest side) in the
# chunk sizes given: every PUBLISH must reach on_message whole, PINGRESP and SUBACK
# must only prove the link alive. argv: stream-file chunk,chunk,... (0 = "nothing
# yet"). The stream comes in a file: this unix port dies ("uncaught NLR") on a
# command-line argument over 255 bytes.
import sys
import binascii
from core import log
from core.mqtt import MQTT

log.quiet(True)
with open(sys.argv[1], "rb") as f:
    stream = f.read()
sizes = [int(x) for x in sys.argv[2].split(",")]


class ScriptedSocket:
    """readinto as a non-blocking socket's: None when nothing is there (a 0 in
    `sizes`), else up to the next chunk size; b"" (0) once the stream is over."""

    def __init__(self):
        self.at = 0
        self.k = 0

    def readinto(self, buf):
        if self.at >= len(stream):
            return None
        n = sizes[self.k % len(sizes)]
        self.k += 1
        if n == 0:
            return None
        n = min(n, len(buf), len(stream) - self.at)
        for i in range(n):
            buf[i] = stream[self.at + i]
        self.at += n
        return n


got = []
m = MQTT(None, "d1", "127.0.0.1", 1883, on_message=lambda t, p: got.append((t, p)))
m.sock = ScriptedSocket()
m.rn = 0
m.last_rx = 0
calls = 0
while m.sock.at < len(stream) and calls < 100000:
    try:
        m._receive()
    except OSError as e:                   # what run() answers with a reconnect
        print("DROPPED", e)
        break
    calls += 1
for t, p in got:
    print("MSG", t, binascii.hexlify(p).decode())
print("LEFT", m.rn, "READ", m.sock.at, len(stream))
