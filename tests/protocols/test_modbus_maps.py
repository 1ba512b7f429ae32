"""protocols.modbus_maps: round trips, validation, pymodbus as the reference and as the peer."""

import asyncio
import math
import struct
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols import modbus_maps as mm
from protocols.modbus_maps import ModbusMapError, decode_registers, encode_values, load_map

DATATYPE = ModbusClientMixin.DATATYPE
PYMODBUS_TYPE = {"u16": DATATYPE.UINT16, "s16": DATATYPE.INT16, "u32": DATATYPE.UINT32,
                 "s32": DATATYPE.INT32, "f32": DATATYPE.FLOAT32}


# --- strategies: engineering values a point can take, and whole maps -------------------------


def raw_limits(point):
    bits = 16 * point.count
    if point.type.startswith("s"):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def values_for(point):
    """Values that survive encode -> decode exactly: decoded raw steps, not arbitrary reals."""
    if point.type == "bool":
        return st.booleans()
    if point.states is not None:
        return st.sampled_from(sorted(point.states.values()))
    if point.type == "f32":
        floats = st.floats(width=32, allow_nan=False, allow_infinity=False)
        if point.scale == 1 and point.offset == 0:
            return floats | st.none()
        return st.none()  # a scaled f32 is checked approximately, in its own test
    low, high = raw_limits(point)
    raws = st.integers(low, high)
    if point.scale == 1 and point.offset == 0:
        return raws
    return raws.map(lambda raw: mm._engineering(raw, point))


def map_values(device_map):
    return st.fixed_dictionaries({p.name: values_for(p) for p in device_map.points})


@st.composite
def device_maps(draw):
    """Random valid maps: points of every type packed one after another in random tables."""
    next_address = {table: draw(st.integers(0, 1000)) for table in mm.REGISTER_TABLES}
    points = []
    for i in range(draw(st.integers(1, 8))):
        type_ = draw(st.sampled_from(mm.DATA_TYPES))
        tables = mm.REGISTER_TABLES if type_ == "bool" else ("holding", "input")
        register = draw(st.sampled_from(tables))
        point = {"name": f"p{i}", "register": register, "type": type_,
                 "address": next_address[register]}
        if type_ == "bool" and register not in mm.BIT_TABLES:
            point["bit"] = draw(st.integers(0, 15))
        if type_ in ("u32", "s32", "f32"):
            point["word_order"] = draw(st.sampled_from(mm.WORD_ORDERS))
        if type_ in ("u16", "s16", "u32", "s32") and draw(st.booleans()):
            point["scale"] = draw(st.sampled_from([0.1, 0.01, 0.001, 0.5, 10]))
            point["offset"] = draw(st.sampled_from([0, -40, 273.15]))
        next_address[register] += point_count(type_)
        points.append(point)
    return load_map({"name": "generated", "points": points})


def point_count(type_):
    return 2 if type_ in ("u32", "s32", "f32") else 1


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("device_map", mm.MAPS.values(), ids=list(mm.MAPS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_builtin_maps_round_trip(device_map, data):
    values = data.draw(map_values(device_map))
    blocks = encode_values(device_map, values)
    assert decode_registers(device_map, blocks) == values
    # and the other way: any words the device could send decode and re-encode to themselves
    assert encode_values(device_map, decode_registers(device_map, blocks)) == blocks


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_maps_round_trip(data):
    device_map = data.draw(device_maps())
    values = data.draw(map_values(device_map))
    blocks = encode_values(device_map, values)
    for table, block in device_map.blocks.items():
        assert len(blocks[table]) == block.count
    assert decode_registers(device_map, blocks) == values


@given(st.floats(-1e6, 1e6), st.sampled_from([0.1, 0.5, 2.0]), st.sampled_from([0.0, -40.0]))
def test_scaled_f32_round_trip_is_within_float32_precision(value, scale, offset):
    point = {"name": "x", "register": "input", "address": 0, "type": "f32", "scale": scale,
             "offset": offset}
    device_map = load_map({"name": "f", "points": [point]})
    decoded = decode_registers(device_map, encode_values(device_map, {"x": value}))["x"]
    assert decoded == pytest.approx(value, rel=1e-6, abs=1e-6 * abs(offset) + 1e-30)


def test_integer_points_round_to_the_nearest_step():
    tank = mm.HAZMAT_TANK
    values = {p.name: False for p in tank.points if p.type == "bool"}
    values.update(tank_pressure=100.0, tank_temperature=-12.34, level_percent=55.56, level_mm=7)
    decoded = decode_registers(tank, encode_values(tank, values))
    assert (decoded["tank_temperature"], decoded["level_percent"]) == (-12.3, 55.6)


# --- pymodbus's converters as the independent reference for word order --------------------------


@settings(max_examples=200)
@given(st.sampled_from(["u16", "s16", "u32", "s32", "f32"]), st.sampled_from(mm.WORD_ORDERS),
       st.data())
def test_words_match_pymodbus_convert(type_, word_order, data):
    point = {"name": "x", "register": "holding", "address": 10, "type": type_}
    if type_ in ("u32", "s32", "f32"):
        point["word_order"] = word_order
    device_map = load_map({"name": "ref", "points": [point]})
    value = data.draw(values_for(device_map.point("x")).filter(lambda v: v is not None))
    words = encode_values(device_map, {"x": value})["holding"]
    assert words == ModbusClientMixin.convert_to_registers(
        value, PYMODBUS_TYPE[type_], word_order=point.get("word_order", "big"))
    reference = ModbusClientMixin.convert_from_registers(
        words, PYMODBUS_TYPE[type_], word_order=point.get("word_order", "big"))
    assert decode_registers(device_map, {"holding": words})["x"] == reference == value


def test_known_words():
    # 1650.5 is 0x44CE5000 as an IEEE 754 single; big word order sends 0x44CE first.
    tank = mm.HAZMAT_TANK
    values = {p.name: False for p in tank.points if p.type == "bool"}
    values.update(tank_pressure=1650.5, tank_temperature=-12.3, level_percent=55.5, level_mm=123456)
    blocks = encode_values(tank, values)
    assert blocks["input"] == [0x44CE, 0x5000, 0xFF85, 555, 0x0001, 0xE240]
    little = load_map({"name": "cdab", "points": [
        {"name": "p", "register": "input", "address": 0, "type": "f32", "word_order": "little"}]})
    assert encode_values(little, {"p": 1650.5})["input"] == [0x5000, 0x44CE]


def test_status_bits_share_one_register():
    host = mm.ALARM_HOST
    values = {p.name: p.states[0] if p.states else False for p in host.points}
    values.update(tamper=True, low_battery=True, battery_voltage=12.6)
    blocks = encode_values(host, values)
    assert blocks["input"][16] == 0b101
    assert blocks["input"][17] == 1260
    decoded = decode_registers(host, blocks)
    assert (decoded["tamper"], decoded["ac_fail"], decoded["low_battery"]) == (True, False, True)


def test_f32_nan_means_no_value():
    tank = mm.HAZMAT_TANK
    words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    decoded = decode_registers(tank, {"input": words + [0, 0, 0, 0], "discrete": [0, 0, 0]})
    assert decoded["tank_pressure"] is None


# --- decode and encode errors ----------------------------------------------------------------------


def escort_values(**changes):
    values = {"vault_door": "closed", "cash_box": "locked", "panic_driver": False,
              "panic_guard": False, "panic_rear": False}
    values.update(changes)
    return values


@pytest.mark.parametrize("blocks, message", [
    ({"discrete": [0, 0, 0]}, "input block needs 2 values"),
    ({"input": [0], "discrete": [0, 0, 0]}, "got 1 values"),
    ({"input": [0, 70000], "discrete": [0, 0, 0]}, "not a 16-bit register"),
    ({"input": [0, -1], "discrete": [0, 0, 0]}, "not a 16-bit register"),
    ({"input": [0, 0], "discrete": [0, 2, 0]}, "not a bit"),
])
def test_decode_errors(blocks, message):
    with pytest.raises(ModbusMapError, match=message):
        decode_registers(mm.ESCORT_VAULT, blocks)


def test_unknown_state_code_does_not_hide_the_other_points():
    # Vault door reports code 7, which the profile lacks, while a panic input is pressed
    # in the same read: the panic must still come through, and the door is flagged.
    values = decode_registers(mm.ESCORT_VAULT, {"input": [7, 0], "discrete": [1, 0, 0]})
    assert values["vault_door"] == "unknown_7" and mm.is_unknown_state(values["vault_door"])
    assert any(v is True for k, v in values.items() if k.startswith("panic"))
    assert not mm.is_unknown_state("closed")


@pytest.mark.parametrize("values, message", [
    ({"vault_door": "closed"}, "missing values for"),
    (escort_values(trunk="open"), "unknown points"),
    (escort_values(vault_door="ajar"), "'ajar' is not one of"),
    (escort_values(panic_driver=1), "is not a bool"),
])
def test_encode_errors(values, message):
    with pytest.raises(ModbusMapError, match=message):
        encode_values(mm.ESCORT_VAULT, values)


@pytest.mark.parametrize("name, value, message", [
    ("tank_temperature", 3276.8, "outside s16"),
    ("level_percent", -0.1, "outside u16"),
    ("level_mm", 2**32, "outside u32"),
    ("tank_pressure", 1e39, "does not fit a f32"),
    ("tank_pressure", math.inf, "not a finite number"),
    ("level_mm", "12", "not a finite number"),
])
def test_encode_out_of_range(name, value, message):
    values = {p.name: False for p in mm.HAZMAT_TANK.points if p.type == "bool"}
    values.update(tank_pressure=0.0, tank_temperature=0.0, level_percent=0.0, level_mm=0)
    values[name] = value
    with pytest.raises(ModbusMapError, match=message):
        encode_values(mm.HAZMAT_TANK, values)


# --- validation: the bad key and the fix --------------------------------------------------------


def one_point(**fields):
    point = {"name": "p", "register": "input", "address": 0, "type": "u16"}
    point.update(fields)
    return {"name": "site", "points": [point]}


@pytest.mark.parametrize("data, key, fix", [
    ([], "map", "give a table"),
    ({"name": "x", "points": [], "vendor": "acme"}, "map.vendor", "use name, description, points"),
    ({"points": [{}]}, "map.name", "non-empty string"),
    ({"name": "x", "points": []}, "x.points", "list of point tables"),
    ({"name": "x", "points": [{"name": "Bad Name"}]}, "points[0].name", "lower_snake_case"),
    (one_point(adress=3), "(p).adress", "use only"),
    (one_point(register="memory"), "(p).register", "coil, discrete, holding, input"),
    (one_point(type="float"), "(p).type", "bool, u16, s16, u32, s32, f32"),
    (one_point(address=400001), "(p).address", "subtract the table base"),  # 6-digit reference
    (one_point(address=-1), "(p).address", "0-based"),
    (one_point(address=65535, type="u32"), "(p).address", "move the point"),
    (one_point(count=2), "(p).count", "drop count"),
    (one_point(register="coil", type="u16"), "(p).type", "use type = \"bool\""),
    (one_point(register="discrete", type="bool", scale=2), "(p).scale", "remove scale"),
    (one_point(type="bool"), "(p).bit", "bit number, 0"),
    (one_point(type="bool", bit=16), "(p).bit", "0 (least significant) to 15"),
    (one_point(bit=3), "(p).bit", "remove bit"),
    (one_point(scale=0), "(p).scale", "non-zero"),
    (one_point(scale="0.1"), "(p).scale", "finite non-zero number"),
    (one_point(offset=math.nan), "(p).offset", "finite number"),
    (one_point(unit=3), "(p).unit", "string"),
    (one_point(word_order="big"), "(p).word_order", "remove word_order"),
    (one_point(type="f32", word_order="BADC"), "(p).word_order", "\"little\" (low word first"),
    (one_point(type="f32", states={0: "off"}), "(p).states", "integer type"),
    (one_point(scale=0.1, states={0: "off"}), "(p).states", "remove scale"),
    (one_point(states={}), "(p).states", "code = \"label\""),
    (one_point(states={"one": "on"}), "(p).states.one", "codes such as 0, 1, 2"),
    (one_point(states={70000: "on"}), "(p).states.70000", "fix the code"),
    (one_point(states={0: "On!"}), "(p).states.0", "lower_snake_case"),
    (one_point(states={0: "on", "0": "off"}), "(p).states.0", "unique"),
    (one_point(alarm={}), "(p).alarm", "{ high = 1600 }"),
    (one_point(alarm={"hi": 3}), "(p).alarm.hi", "use high, high_high, low, low_low, when"),
    (one_point(alarm={"high": "3"}), "(p).alarm.high", "number"),
    (one_point(alarm={"low": 9, "high": 3}), "(p).alarm", "low_low <= low <= high <= high_high"),
    (one_point(alarm={"when": True}), "(p).alarm.when", "applies to bool and state points"),
    (one_point(type="bool", bit=0, alarm={"high": 1}), "(p).alarm", "{ when = true }"),
    (one_point(type="bool", bit=0, alarm={"when": 1}), "(p).alarm.when", "use values from"),
    (one_point(states={0: "shut"}, alarm={"when": ["open"]}), "(p).alarm.when", "['shut']"),
    ({"name": "x", "points": [{"name": "a", "register": "input", "address": 0, "type": "u16"},
                              {"name": "a", "register": "input", "address": 1, "type": "u16"}]},
     "points (a)", "its own name"),
    ({"name": "x", "points": [{"name": "a", "register": "input", "address": 0, "type": "u32"},
                              {"name": "b", "register": "input", "address": 1, "type": "u16"}]},
     "(b).address", "also used by a"),
    ({"name": "x", "points": [{"name": "a", "register": "input", "address": 5, "type": "bool", "bit": 3},
                              {"name": "b", "register": "input", "address": 5, "type": "bool", "bit": 3}]},
     "(b).address", "distinct bits"),
    ({"name": "x", "points": [{"name": "a", "register": "holding", "address": 0, "type": "u16"},
                              {"name": "b", "register": "holding", "address": 125, "type": "u16"}]},
     "x.points", "at most 125"),
])
def test_validation_names_the_key_and_the_fix(data, key, fix):
    with pytest.raises(ModbusMapError) as err:
        load_map(data)
    assert key in str(err.value) and fix in str(err.value), str(err.value)


def test_site_map_from_toml():
    # A vendor that sends 32-bit values low word first and keys its states as TOML strings.
    site = load_map(tomllib.loads('''
        name = "acme-tank-7"
        description = "Acme level gauge, site override of hazmat-tank"

        [[points]]
        name = "level_mm"
        register = "holding"
        address = 200
        type = "u32"
        word_order = "little"
        unit = "mm"
        alarm = { low = 300, high = 2800 }

        [[points]]
        name = "valve"
        register = "holding"
        address = 202
        type = "u16"
        states = { "0" = "closed", "1" = "open", "2" = "fault" }
        alarm = { when = ["fault"] }
    '''))
    assert site.blocks == {"holding": mm.Block(200, 3)}
    assert site.point("level_mm").count == 2
    blocks = encode_values(site, {"level_mm": 70000, "valve": "fault"})
    assert blocks == {"holding": [70000 & 0xFFFF, 70000 >> 16, 2]}
    assert mm.evaluate_alarms(site, decode_registers(site, blocks)) == {"level_mm": "high", "valve": "active"}


# --- alarms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level, expected", [
    (4.9, "low_low"), (5.0, "low_low"), (7.5, "low"), (10.0, "low"), (50.0, None),
    (90.0, "high"), (94.9, "high"), (95.0, "high_high"), (100.0, "high_high"),
])
def test_level_thresholds(level, expected):
    active = mm.evaluate_alarms(mm.HAZMAT_TANK, {"level_percent": level})
    assert active.get("level_percent") == expected


def test_discrete_alarms_and_missing_values():
    active = mm.evaluate_alarms(mm.ESCORT_VAULT, escort_values(vault_door="forced", panic_rear=True))
    assert active == {"vault_door": "active", "panic_rear": "active"}
    assert mm.evaluate_alarms(mm.ESCORT_VAULT, escort_values(vault_door="open")) == {}
    assert mm.evaluate_alarms(mm.HAZMAT_TANK, {"tank_pressure": None, "leak_2": True}) == {"leak_2": "active"}


def test_builtin_maps_cover_the_device_profiles():
    assert {p.register for m in mm.MAPS.values() for p in m.points} == set(mm.REGISTER_TABLES)
    host_names = {p.name for p in mm.ALARM_HOST.points}
    assert {"zone_01", "zone_16", "partition_1_arm", "tamper", "ac_fail", "low_battery"} <= host_names
    tank = mm.HAZMAT_TANK
    assert tank.point("tank_pressure").alarm.high_high == 1800.0
    assert tank.point("tank_temperature").type == "s16"
    assert tank.point("level_percent").alarm.low == 10.0
    assert all(tank.point(n).alarm.when == {True} for n in ("leak_1", "leak_2"))
    assert mm.ESCORT_VAULT.point("vault_door").states == {0: "closed", 1: "open", 2: "forced"}


# --- interop: pymodbus's own TCP server and client ----------------------------------------------------


def sim_device(device_id, device_map, blocks):
    """A pymodbus SimDevice whose four tables hold our encoded blocks."""
    tables = []
    for table, kind in zip(mm.REGISTER_TABLES, (DataType.BITS, DataType.BITS,
                                                DataType.REGISTERS, DataType.REGISTERS)):
        block = device_map.blocks.get(table)
        # pymodbus wants every table; an unused one gets a single zero at a far address.
        values = blocks[table] if block else [False if kind is DataType.BITS else 0]
        tables.append([SimData(block.start if block else 9000, values=values, datatype=kind)])
    return SimDevice(id=device_id, simdata=tuple(tables))


READERS = {"coil": "read_coils", "discrete": "read_discrete_inputs",
           "holding": "read_holding_registers", "input": "read_input_registers"}

SAMPLE_VALUES = {
    "alarm-host": {**{f"zone_{z:02d}": "normal" for z in range(1, 17)}, "zone_03": "alarm",
                   "zone_09": "bypassed", "tamper": False, "ac_fail": True, "low_battery": False,
                   "battery_voltage": 12.35, "partition_1_arm": "armed_away",
                   "partition_2_arm": "disarmed", "partition_3_arm": "armed_stay",
                   "partition_4_arm": "disarmed", "siren": True, "strobe": False},
    "hazmat-tank": {"tank_pressure": 1712.25, "tank_temperature": -18.5, "level_percent": 8.7,
                    "level_mm": 1_234_567, "valve_open": True, "leak_1": False, "leak_2": True},
    "escort-vault": escort_values(vault_door="forced", cash_box="unlocked", panic_guard=True),
}


async def test_pymodbus_server_serves_what_we_encode_and_we_decode_what_it_sends():
    maps = list(mm.MAPS.values())
    devices = [sim_device(i, m, encode_values(m, SAMPLE_VALUES[m.name])) for i, m in enumerate(maps, 1)]
    # Port 0: the OS picks a free port, never 502.
    server = ModbusTcpServer(devices, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    client = None
    try:
        async with asyncio.timeout(10):
            port = server.transport.sockets[0].getsockname()[1]
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            assert await client.connect()
            for device_id, device_map in enumerate(maps, 1):
                blocks = {}
                for table, block in device_map.blocks.items():
                    reply = await getattr(client, READERS[table])(
                        block.start, count=block.count, device_id=device_id)
                    assert not reply.isError(), reply
                    blocks[table] = reply.bits if table in mm.BIT_TABLES else reply.registers
                decoded = decode_registers(device_map, blocks)
                assert decoded == SAMPLE_VALUES[device_map.name]

            # Arm partition 2 the way the gateway would: encode, write the holding block, read back.
            host = mm.ALARM_HOST
            command = {**SAMPLE_VALUES["alarm-host"], "partition_2_arm": "armed_stay"}
            holding = host.blocks["holding"]
            reply = await client.write_registers(
                holding.start, encode_values(host, command)["holding"], device_id=1)
            assert not reply.isError(), reply
            reply = await client.read_holding_registers(holding.start, count=holding.count, device_id=1)
            partitions = decode_registers(host, {**encode_values(host, command), "holding": reply.registers})
            assert partitions["partition_2_arm"] == "armed_stay"
            assert mm.evaluate_alarms(host, partitions) == {"zone_03": "active", "ac_fail": "active"}
    finally:
        if client is not None:
            client.close()
        await server.shutdown()


# --- fuzzing: whatever a device or a site config sends, only ModbusMapError --------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-2**1100, 2**1100) | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
cell_values = st.none() | st.booleans() | st.integers(-2**20, 2**20) | st.floats() | st.text(max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(mm.MAPS.values())),
       st.dictionaries(st.sampled_from(mm.REGISTER_TABLES), st.lists(cell_values, max_size=30)))
def test_fuzz_decode_device_data(device_map, blocks):
    try:
        decode_registers(device_map, blocks)
    except ModbusMapError:
        pass


VALID_POINT = {"name": "p", "register": "input", "address": 0, "type": "u16", "scale": 0.1,
               "unit": "kPa", "alarm": {"high": 10}}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VALID_POINT) + ["word_order", "bit", "states", "count", "offset", 7]),
       json_values)
def test_fuzz_site_config(key, value):
    point = {**VALID_POINT, key: value}
    try:
        device_map = load_map({"name": "site", "points": [point]})
    except ModbusMapError:
        return
    # whatever loaded must also encode and decode
    p = device_map.point(point["name"])
    if p.type == "bool":
        sample = True
    elif p.states:
        sample = next(iter(p.states.values()))
    else:
        sample = p.offset  # raw 0 fits every type
    assert decode_registers(device_map, encode_values(device_map, {p.name: sample}))[p.name] == sample


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6) | st.integers(), json_values, max_size=6))
def test_fuzz_encode_values(values):
    try:
        encode_values(mm.ESCORT_VAULT, {**escort_values(), **values})
    except ModbusMapError:
        pass
