"""An MQTT peer for tests (paho-mqtt): plays the indoor unit, the guard station, or
a status watcher, and records what it receives."""
import json
import threading
import time

import paho.mqtt.client as mqtt


class MqttPeer:
    def __init__(self, host, port, topics=("#",), client_id=None):
        self.messages = []          # (topic, payload bytes, retain)
        self._cond = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        self.c.on_message = self._on_message
        self._topics = topics
        self._subscribed = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a, **k: self._subscribed.set()
        self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        if not self._subscribed.wait(5):
            raise RuntimeError("MQTT peer did not subscribe")

    def _on_connect(self, client, userdata, flags, rc, props=None):
        for t in self._topics:
            client.subscribe(t, 0)

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self._cond.notify_all()

    def publish(self, topic, payload, retain=False):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        self.c.publish(topic, payload, qos=0, retain=retain).wait_for_publish(5)

    def wait_for(self, topic, pred=lambda d: True, timeout=10, after=0):
        """First message on `topic` (index >= after) whose JSON payload satisfies
        pred; returns (index, decoded payload)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.messages)):
                    t, p, _ = self.messages[i]
                    if t != topic:
                        continue
                    try:
                        d = json.loads(p)
                    except ValueError:
                        continue
                    if pred(d):
                        return i, d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no message on %s matching within %ss; got %r" % (
                        topic, timeout, self.messages[-10:]))
                self._cond.wait(min(left, 0.1))

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()
