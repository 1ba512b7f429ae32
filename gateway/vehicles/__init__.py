"""Vehicles: escort (cash-in-transit) and hazmat fleets.

At the center: a JT/T 808 server (`server.JT808Server`) that registers and
authenticates terminals against the vehicle registry, turns positions and alarms
into Events, and runs the fleet rules (geofences, overspeed, parking, fatigue,
route deviation, offline).

At the edge (the gateway on the vehicle computer): an NMEA source, a Modbus
poller, threshold/state rules, and an uplink to the center as a JT/T 808
terminal that keeps every position on disk until the center has it.

See docs/vehicles.md.
"""
