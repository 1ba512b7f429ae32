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
])
def test_bad_values_are_refused_naming_the_key(table, key):
    with pytest.raises(ConfigError) as refused:
        from_table(table, Path("."))
    assert refused.value.key == key and refused.value.fix
