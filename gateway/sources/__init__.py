"""Sources: turn what devices send into Events (DC-09 receiver, MQTT)."""
