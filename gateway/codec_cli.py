"""`jifang decode` and `jifang encode`: read a capture, or build a frame, by hand.

decode prints one JSON object per frame with every field named; a frame that fails
prints {"error": ..., "reason": ...} and the command goes on with the next one,
exiting 1 at the end if any failed. encode takes that same JSON back.
"""
import json
import sys

FORMATS_DECODE = ("dc09", "cid", "jt808", "nmea")
FORMATS_ENCODE = ("dc09", "cid", "jt808")


def _add_key_options(parser):
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="HEX",
                      help="DC-09 AES key as hex digits of the binary key (the standard's convention)")
    keys.add_argument("--key-text", metavar="TEXT",
                      help="DC-09 AES key given as its 16/24/32 characters (pysiaalarm's and several panels' convention)")


def add_arguments_decode(parser):
    parser.add_argument("format", choices=FORMATS_DECODE)
    _add_key_options(parser)
    parser.add_argument("--check-time", action="store_true",
                        help="DC-09: refuse timestamps outside the receiver window (+20/-40 s from now)")
    parser.add_argument("--allow-no-checksum", action="store_true",
                        help="NMEA: accept sentences without a *hh checksum")
    parser.add_argument("frame", nargs="*",
                        help="frames (text for DC-09, Contact ID, NMEA; hex for JT/T 808); none or - reads one per line from stdin")


def add_arguments_encode(parser):
    parser.add_argument("format", choices=FORMATS_ENCODE)
    _add_key_options(parser)
    parser.add_argument("json", nargs="*",
                        help="JSON objects as printed by `jifang decode`; none or - reads one per line from stdin")


def _key(args):
    from protocols import dc09
    if args.key:
        return dc09.key_from_hex(args.key)
    if args.key_text:
        return dc09.key_from_text(args.key_text)
    return None


def _inputs(values):
    for value in values or ["-"]:
        if value != "-":
            yield value
            continue
        for line in sys.stdin:
            line = line.rstrip("\r\n")
            if line.strip():
                yield line


# ----------------------------------------------------------------- DC-09

def _iso(ts):
    return None if ts is None else "%04d-%02d-%02dT%02d:%02d:%02dZ" % tuple(ts)


def _from_iso(text):
    if text is None:
        return None
    from datetime import datetime, timezone
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)


def contact_id_dict(report):
    from protocols import contactid
    name, event_class, category = contactid.describe(report.code)
    qualifier = {1: "new", 3: "restore", 6: "status"}[report.qualifier]
    if event_class == "open_close":
        qualifier = {1: "opening", 3: "closing", 6: "status"}[report.qualifier]
    d = {"account": report.account}
    if report.msg_type is not None:
        d["message_type"] = report.msg_type
    d.update({"qualifier": report.qualifier, "qualifier_name": qualifier, "code": report.code,
              "name": name, "event_class": event_class, "category": category,
              "partition": report.partition, "zone": report.zone})
    return d


def dc09_dict(msg):
    from protocols import sia_codes
    d = {"protocol": "dc09", "token": msg.token, "encrypted": msg.encrypted,
         "sequence": msg.seq, "receiver": msg.receiver, "prefix": msg.prefix,
         "account": msg.account, "data": msg.data,
         "xdata": [{"id": k, "value": v} for k, v in msg.xdata],
         "timestamp": _iso(msg.timestamp)}
    if msg.token == "ADM-CID":
        d["contact_id"] = contact_id_dict(msg.contact_id())
    elif msg.token == "SIA-DCS":
        events = []
        for ev in msg.sia_events():
            name, event_class, category = sia_codes.describe(ev["code"])
            events.append(dict(ev, name=name, event_class=event_class, category=category))
        d["events"] = events
    pos = msg.position()
    if pos is not None:
        d["position"] = {"lat": round(pos[0], 6), "lon": round(pos[1], 6)}
    return d


def decode_dc09(text, args):
    from protocols import dc09
    frame = text.encode("latin-1")
    if not frame.startswith(b"\n"):   # a capture pasted as one line has lost its LF and CR
        frame = b"\n" + frame
    if not frame.endswith(b"\r"):
        frame += b"\r"
    msg = dc09.decode(frame, _key(args))
    if args.check_time:
        dc09.check_timestamp(msg.timestamp, dc09.timestamp_now())
    return dc09_dict(msg)


def encode_dc09(obj, args):
    from protocols import contactid, dc09
    token = obj.get("token", "ADM-CID")
    account = str(obj.get("account", "0"))
    data = obj.get("data")
    if data is None and "contact_id" in obj:
        c = obj["contact_id"]
        data = contactid.dc09_data(contactid.Report(account, int(c["qualifier"]), int(c["code"]),
                                                    int(c.get("partition", 0)), int(c.get("zone", 0))))
    xdata = [(x["id"], x["value"]) for x in obj.get("xdata", [])]
    if "position" in obj and not any(k in ("X", "Y") for k, _ in xdata):
        xdata += dc09.position_xdata(obj["position"]["lat"], obj["position"]["lon"])
    key = _key(args)
    timestamp = _from_iso(obj.get("timestamp"))
    if key is not None and timestamp is None:
        timestamp = dc09.timestamp_now()
    msg = dc09.Message(token, int(obj.get("sequence", 1)), account, obj.get("receiver"),
                       str(obj.get("prefix", "0")), data or "", xdata, timestamp)
    return dc09.encode(msg, key).decode().strip("\n\r")


# ----------------------------------------------------------------- Contact ID

def decode_cid(text, args):
    from protocols import contactid
    return dict({"protocol": "cid"}, **contact_id_dict(contactid.decode(text)))


def encode_cid(obj, args):
    from protocols import contactid
    return contactid.encode(contactid.Report(str(obj["account"]), int(obj["qualifier"]), int(obj["code"]),
                                             int(obj.get("partition", 0)), int(obj.get("zone", 0)),
                                             int(obj.get("message_type", 18))))


# ----------------------------------------------------------------- JT/T 808 and NMEA

def decode_jt808(text, args):
    from protocols import jt808
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise jt808.JT808Error("field", "JT/T 808 frames are given in hex") from None
    return dict({"protocol": "jt808"}, **jt808.decode_frame(data).to_dict())


def encode_jt808(obj, args):
    from protocols import jt808
    return jt808.encode_frame(jt808.message_from_dict(obj)).hex().upper()


def decode_nmea(text, args):
    from protocols import nmea
    return dict({"protocol": "nmea"}, **nmea.decode(text.strip(), require_checksum=not args.allow_no_checksum).to_dict())


# ----------------------------------------------------------------- commands

def _codec_errors():
    """Every codec's own error type: anything else escaping a decoder is a bug."""
    from protocols.contactid import ContactIDError
    from protocols.dc09 import DC09Error
    from protocols.jt808 import JT808Error
    from protocols.nmea import NMEAError
    return (DC09Error, ContactIDError, JT808Error, NMEAError)


def _error_dict(exc, source):
    reason = getattr(exc, "reason", None) or {"ContactIDError": "checksum"}.get(type(exc).__name__, "field")
    if type(exc).__name__ == "ContactIDError" and "check digit" not in str(exc):
        reason = "field"
    return {"error": str(exc), "reason": reason, "input": source}


def run_decode(args):
    decoder = globals()["decode_" + args.format]
    errors = _codec_errors()
    failed = 0
    for text in _inputs(args.frame):
        try:
            out = decoder(text, args)
        except errors as exc:
            out = _error_dict(exc, text)
            failed += 1
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def run_encode(args):
    encoder = globals()["encode_" + args.format]
    errors = _codec_errors() + (KeyError, TypeError, ValueError)
    failed = 0
    for text in _inputs(args.json):
        try:
            print(encoder(json.loads(text), args), flush=True)
        except errors as exc:
            detail = "missing field %s" % exc if isinstance(exc, KeyError) else str(exc)
            print(json.dumps({"error": detail, "reason": getattr(exc, "reason", "field"), "input": text}),
                  flush=True)
            failed += 1
    return 1 if failed else 0
