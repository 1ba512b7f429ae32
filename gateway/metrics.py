"""Counters and gauges, exposed in the Prometheus text format on /metrics.

Small on purpose: counters are incremented by name and labels where things
happen; gauges that describe current state (queue depth, oldest unforwarded
age, open connections) are computed when scraped, by callbacks the components
register, so they can never drift from the truth.
"""
from collections import defaultdict

HELP = {
    "jifang_events_in_total": ("counter", "Events durably recorded, by source and event class"),
    "jifang_events_duplicate_total": ("counter", "Events received again (retries) and recorded once"),
    "jifang_frames_total": ("counter", "DC-09 frames received, by token"),
    "jifang_naks_total": ("counter", "DC-09 NAKs sent, by reason (account_mismatch: clear header account differs from the encrypted one)"),
    "jifang_dc09_replays_total": ("counter", "Encrypted DC-09 messages seen again within the timestamp window: ACKed, not recorded"),
    "jifang_dc09_udp_naks_shrunk_total": ("counter", "UDP NAKs sent without the time, or not at all, to stay no larger than the datagram"),
    "jifang_dc09_replay_cache_entries": ("gauge", "Entries in the DC-09 replay cache"),
    "jifang_dc09_replay_evictions_total": ("counter", "Replay cache entries evicted before their window ended (cache full)"),
    "jifang_duhs_total": ("counter", "DC-09 DUHs sent, by token"),
    "jifang_forwarded_total": ("counter", "Events delivered by a forwarder"),
    "jifang_forward_failures_total": ("counter", "Delivery attempts that failed, by forwarder and reason"),
    "jifang_forward_rejected_total": ("counter", "Events the upstream refused for good (DUH), by forwarder"),
    "jifang_mqtt_messages_total": ("counter", "MQTT source messages, by kind"),
    "jifang_queue_depth": ("gauge", "Events waiting in a forwarder's outbox"),
    "jifang_oldest_unforwarded_seconds": ("gauge", "Age of the oldest event waiting in a forwarder's outbox"),
    "jifang_connections": ("gauge", "Open DC-09 TCP connections"),
    "jifang_forwarder_connected": ("gauge", "1 when a forwarder's upstream is reachable"),
    "jifang_jt808_refused_total": ("counter", "JT/T 808 frames refused (answered failure), by reason"),
    "jifang_jt808_closed_total": ("counter", "JT/T 808 connections closed by a limit, by reason"),
    "jifang_jt808_reassembly_bytes": ("gauge", "JT/T 808 subpackage bytes held across sessions"),
}


class Metrics:
    def __init__(self):
        self.counters = defaultdict(float)   # (name, sorted label items) -> value
        self.gauge_sources = []              # callables -> [(name, labels dict, value)]

    def inc(self, name, amount=1, **labels):
        self.counters[(name, tuple(sorted(labels.items())))] += amount

    def value(self, name, **labels):
        return self.counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name):
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def add_gauges(self, fn):
        self.gauge_sources.append(fn)

    def render(self):
        samples = defaultdict(list)
        for (name, labels), value in self.counters.items():
            samples[name].append((dict(labels), value))
        for fn in self.gauge_sources:
            for name, labels, value in fn():
                samples[name].append((labels, value))
        lines = []
        for name in sorted(samples):
            kind, help_text = HELP.get(name, ("untyped", name))
            lines.append("# HELP %s %s" % (name, help_text))
            lines.append("# TYPE %s %s" % (name, kind))
            for labels, value in samples[name]:
                label_text = ",".join('%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"'))
                                      for k, v in sorted(labels.items()))
                lines.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", _number(value)))
        return "\n".join(lines) + "\n"


def _number(value):
    return str(int(value)) if float(value).is_integer() else "%.3f" % value
