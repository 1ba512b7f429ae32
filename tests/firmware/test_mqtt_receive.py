"""The firmware's MQTT client reads the broker by polling its socket and cutting the
bytes into packets itself (core/mqtt.py: MQTT._receive). Fed here with a byte stream
a real Mosquitto sent (CONNACK excepted: read at connect), split every way a TCP
stream can split it."""
import random
import re
import socket
import struct
import time

import paho.mqtt.client as paho
import pytest

from tests.firmware.test_memory import run_device


def _mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(kind, body):
    n, head = len(body), bytearray([kind])
    while True:
        d, n = n & 0x7F, n >> 7
        head.append(d | 0x80 if n else d)
        if not n:
            return bytes(head) + body


PAYLOADS = [b'{"op": "answer", "call": 1}', b'{"op": "open", "call": 2, "pad": "' + b"x" * 300 + b'"}',
            b"", b'{"op": "hangup", "call": 3}']


def _capture(host, port):
    """What the broker sends a client subscribed to jf/door/d1/call (QoS 0, as the
    firmware subscribes) while another publishes PAYLOADS to it and the client pings."""
    raw = socket.create_connection((host, port))
    raw.sendall(_packet(0x10, _mqtt_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 30) + _mqtt_str("capture")))
    connack = raw.recv(4)
    assert connack[:1] == b"\x20" and connack[3] == 0
    raw.sendall(_packet(0x82, struct.pack("!H", 1) + _mqtt_str("jf/door/d1/call") + b"\x00"))
    time.sleep(0.2)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    pub.connect(host, port)
    pub.loop_start()
    for p in PAYLOADS[:2]:
        pub.publish("jf/door/d1/call", p).wait_for_publish(5)
    raw.sendall(b"\xc0\x00")                 # PINGREQ: a PINGRESP in the middle
    time.sleep(0.2)
    for p in PAYLOADS[2:]:
        pub.publish("jf/door/d1/call", p).wait_for_publish(5)
    pub.loop_stop()
    raw.settimeout(1.0)
    data = b""
    try:
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    raw.close()
    return data


@pytest.mark.micropython
def test_broker_stream_cut_into_packets_however_it_arrives(mosquitto, tmp_path):
    stream = _capture(*mosquitto)
    (tmp_path / "stream").write_bytes(stream)
    assert stream[:1] == b"\x90" and b"\xd0\x00" in stream       # SUBACK first, a PINGRESP inside
    rng = random.Random(808)
    chunkings = ["4096", "1", "2", "3,0,5", "7", "64,0,1,0,130",
                 ",".join(str(rng.randint(0, 40)) for _ in range(50)) + ",1"]
    for sizes in chunkings:
        r = run_device("mqttrx.py", tmp_path / "stream", sizes, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        got = re.findall(r"^MSG (\S+) ?(\S*)$", r.stdout, re.M)
        assert [(t, bytes.fromhex(p)) for t, p in got] == [("jf/door/d1/call", p) for p in PAYLOADS], (sizes, r.stdout)
        left = re.search(r"LEFT (\d+) READ (\d+) (\d+)", r.stdout)
        assert left.group(1) == "0" and left.group(2) == left.group(3), (sizes, r.stdout)


@pytest.mark.micropython
def test_packet_over_the_buffer_drops_the_link_not_the_device(tmp_path):
    """A PUBLISH larger than the 512-byte receive buffer (nothing the devices are
    sent is near that) ends the connection, which run() re-opens; the messages
    before it were delivered."""
    small = _packet(0x30, _mqtt_str("jf/door/d1/call") + PAYLOADS[0])
    big = _packet(0x30, _mqtt_str("jf/door/d1/call") + b"x" * 600)
    (tmp_path / "stream").write_bytes(small + big + small)
    r = run_device("mqttrx.py", tmp_path / "stream", "64", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.findall(r"^MSG (\S+)", r.stdout, re.M) == ["jf/door/d1/call"]
    assert "DROPPED packet over 512 bytes" in r.stdout
