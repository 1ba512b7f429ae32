# SIA DC-09 data that only receivers and vehicles need: positions in extended
# data ([X…][Y…]) and SIA DC-03 event blocks. Kept out of dc09.py so an alarm panel
# does not hold them in RAM; dc09.position_xdata/parse_position/parse_sia_data and
# Message.position()/sia_events() load this module when first used.
# Runs on CPython and MicroPython.
from protocols.dc09 import DC09Error


def position_xdata(lat, lon):
    """[("X", longitude), ("Y", latitude)] in DC-09's degrees-hemisphere-minutes form,
    e.g. X114E03.471 / Y22N32.544 (0.001 minute is about 1.9 m)."""
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise DC09Error("format", "position out of range: %r, %r" % (lat, lon))
    return [("X", _dm(lon, "E", "W", "%03d")), ("Y", _dm(lat, "N", "S", "%02d"))]


def _dm(value, pos, neg, deg_fmt):
    millimin = int(abs(value) * 60000 + 0.5)
    deg, rest = divmod(millimin, 60000)
    return (deg_fmt % deg) + (pos if value >= 0 else neg) + "%02d.%03d" % (rest // 1000, rest % 1000)


def parse_position(xdata):
    """(lat, lon) in decimal degrees from X/Y extended data, or None when absent.
    Reads the DC-09 form (X093W23.456) and signed decimal degrees (X-93.391)."""
    lat = lon = None
    for letter, value in xdata:
        if letter == "X":
            lon = _parse_coord(value, "E", "W", 180)
        elif letter == "Y":
            lat = _parse_coord(value, "N", "S", 90)
    if lat is None or lon is None:
        return None
    return lat, lon


def _parse_coord(text, pos, neg, limit):
    try:
        for hemi, sign in ((pos, 1), (neg, -1)):
            i = text.find(hemi)
            if i > 0:
                deg = int(text[:i])
                minutes = float(text[i + 1:]) if i + 1 < len(text) else 0.0
                if minutes >= 60:
                    raise ValueError
                value = sign * (deg + minutes / 60.0)
                break
        else:
            value = float(text)
    except ValueError:
        raise DC09Error("format", "not a coordinate: %r" % text)
    if not (-limit <= value <= limit):
        raise DC09Error("format", "coordinate out of range: %r" % text)
    return value


# ---------------------------------------------------------------- SIA DC-03 data

# Modifiers that may stand before an event code in a DC-03 block (two lower-case
# letters and a value), and the event fields they set; others keep their own name.
_SIA_MODIFIERS = {"ri": "partition", "id": "user", "ti": "time", "pi": "peripheral"}


def parse_sia_data(data):
    """Events of SIA DC-03 data: "#1234|Nri1/BA015", "#1234|Nti12:30/id003/ri01/CL003",
    or as one panel sends it "#123456|Nri1CL0^VX FRONTE ^". Each event is a dict:
    code (two capitals), address (zone or user, int or None), text (after ^, or None),
    new (N) or old (O), and partition, user, time, peripheral (None when not given)."""
    bar = data.find("|")
    body = data[bar + 1:] if bar >= 0 else data
    if not body or body[0] not in "NO":
        raise DC09Error("format", "SIA data must start with N or O: %r" % body)
    context = {"partition": None, "user": None, "time": None, "peripheral": None}
    events = []
    i, n = 1, len(body)
    while i < n:
        if body[i] == "/":
            i += 1
            continue
        two = body[i:i + 2]
        j = i + 2
        if len(two) == 2 and two.isalpha() and two.islower():      # modifier
            while j < n and (body[j].isdigit() or body[j] == ":"):
                j += 1
            value = body[i + 2:j]
            if not value:
                raise DC09Error("format", "SIA modifier %r has no value" % two)
            field = _SIA_MODIFIERS.get(two, two)
            context[field] = value if ":" in value else int(value)
        elif len(two) == 2 and two.isalpha() and two.isupper():    # event code
            while j < n and body[j].isdigit():
                j += 1
            event = {"code": two, "address": int(body[i + 2:j]) if j > i + 2 else None,
                     "text": None, "new": body[0] == "N"}
            if j < n and body[j] == "^":
                close = body.find("^", j + 1)
                if close < 0:
                    raise DC09Error("format", "SIA text has no closing ^")
                event["text"] = body[j + 1:close]
                j = close + 1
            for k in context:
                event[k] = context[k]
            events.append(event)
        else:
            raise DC09Error("format", "SIA data: unexpected %r" % body[i:])
        i = j
    if not events:
        raise DC09Error("format", "SIA data carries no event code: %r" % body)
    return events


