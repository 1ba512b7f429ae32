"""Sources: turn what devices send into Events (DC-09 receiver, MQTT).

A source sees the rest of the gateway only through a `SourcePort`: it hands over
events, says which device it heard from, and asks the log for a recent event's
device time. It never reaches the pipeline's store or supervision's state, so the
store can change (SQLite, PostgreSQL, the cluster's bus in front of it) without a
source noticing, and a test can give a source a port of its own.
"""
from dataclasses import dataclass
from typing import Awaitable, Callable


@dataclass(frozen=True)
class SourcePort:
    # async (event) -> StoredEvent, or None for a duplicate; returns once the event is
    # durable (or, cluster mode, on the bus); raises gateway.pipeline.InvalidEvent.
    submit: Callable[..., Awaitable]
    # (account, link_test=False): the device is alive (gateway.supervision.Supervision).
    heard_from: Callable[..., None]
    # async (account, sequence, code, zone, qualifier, since_ms) -> device time or None
    # (gateway.store.Store.recent_device_time): how a retry of an undated frame is told.
    recent_device_time: Callable[..., Awaitable]

    @classmethod
    def of(cls, pipeline, supervision, store):
        return cls(pipeline.submit, supervision.heard_from, store.recent_device_time)
