"""The `[console]` table of the gateway's TOML: every key checked, errors that say what to write."""
import tomllib
from pathlib import Path

import pytest

from gateway.config import ConfigError
from gateway.console.settings import from_table

EXAMPLE = """
[console]
listen = "127.0.0.1:8080"
db_path = "console.sqlite"
escalate_after_seconds = 90
secure_cookies = true

[console.sites.1001]
zones = { 1 = "Front door", 15 = "Vault" }
contacts = [ { name = "Wang Li", phone = "138 0451 0001" } ]
"""


def test_the_documented_example_loads(tmp_path):
    s = from_table(tomllib.loads(EXAMPLE)["console"], base_dir=tmp_path)
    assert s.listen == ("127.0.0.1", 8080) and s.db_path == tmp_path / "console.sqlite"
    assert s.escalate_after_seconds == 90 and s.secure_cookies and s.session_idle_minutes == 30
    assert s.site_details("1001") == {"zones": {1: "Front door", 15: "Vault"},
                                      "contacts": [{"name": "Wang Li", "phone": "138 0451 0001"}]}


@pytest.mark.parametrize("table, key", [
    ({"escalate_after_secs": 60}, "console.escalate_after_secs"),
    ({"escalate_after_seconds": 0}, "console.escalate_after_seconds"),
    ({"secure_cookies": "yes"}, "console.secure_cookies"),
    ({"listen": "localhost"}, "console.listen"),
    ({"geofences": []}, "console.geofences"),           # the fleet's geofences live in [[vehicles.geofences]]
    ({"hash_workers": 0}, "console.hash_workers"),
    ({"hash_queue": -1}, "console.hash_queue"),
    ({"hash_niceness": -5}, "console.hash_niceness"),              # raising priority is not ours to do
    ({"login_backoff_seconds": 0}, "console.login_backoff_seconds"),
    ({"login_address_max_failures": 0}, "console.login_address_max_failures"),
    ({"process": "thread"}, "console.process"),
    ({"live_poll_ms": 1}, "console.live_poll_ms"),
    ({"tls_cert_file": "console.crt"}, "console.tls_cert_file"),   # without its key
    ({"trusted_proxies": "127.0.0.1"}, "console.trusted_proxies"),
])
def test_bad_values_are_refused_naming_the_key(table, key):
    with pytest.raises(ConfigError) as refused:
        from_table(table, Path("."))
    assert refused.value.key == key and refused.value.fix


def test_the_hardening_keys_have_their_documented_defaults_and_load(tmp_path):
    s = from_table({}, tmp_path)
    assert (s.login_max_failures, s.login_address_max_failures, s.login_window_minutes, s.login_backoff_seconds,
            s.login_lockout_seconds, s.hash_workers, s.hash_queue, s.hash_niceness, s.process, s.process_niceness,
            s.live_poll_ms, s.secure_cookies, s.trusted_proxies, s.tls_cert_file) == (
                5, 20, 15, 30, 300, 1, 8, 10, "child", 10, 200, False, (), None)
    s = from_table({"tls_cert_file": "c.pem", "tls_key_file": "/etc/k.pem", "trusted_proxies": ["127.0.0.1"],
                    "process": "inline", "hash_workers": 2, "hash_queue": 0}, tmp_path)
    assert s.tls_cert_file == tmp_path / "c.pem" and s.tls_key_file == Path("/etc/k.pem")
    assert (s.trusted_proxies, s.process, s.hash_workers, s.hash_queue) == (("127.0.0.1",), "inline", 2, 0)
