"""JT/T 808 (2013 and 2019 editions): frames and message bodies, both directions.

No I/O; CPython only.  `decode_frame` takes one frame as it comes off the wire
(7E … 7E, escaped) and returns a `Message`; `encode_frame` is its exact inverse.
Every decoding fault raises `JT808Error` (a ValueError) with a `.reason`:
"frame" (delimiters), "escape", "check", "header", "length", "body",
"unsupported" (encoding a body the message id does not carry).

Field conventions (also what `Message.to_dict` prints):
- phone: the BCD digits of the header, all 12 (2013) or 20 (2019), as a str.
  Some vendors put a hex id there; its a-f nibbles are kept so the frame is
  still accepted and re-encodes byte for byte.
- latitude/longitude: signed decimal degrees (south/west status bits give the sign).
- time: aware datetime in GMT+8 (the standard's clock), None when the device
  sent all zeros (no fix yet); ISO 8601 in dicts.
- alarm/status flags: ints on the objects (cheap, exact); lists of names in
  dicts, "bitN" for bits this edition leaves unnamed.
- anything known but malformed, or unknown (extra items, parameters, message
  ids, encrypted or fragment bodies) is kept raw and re-encoded byte for byte.
"""

# Split by role, as Traccar splits its JT/T 808 (Huabao) decoder: names and codes
# (jt808_codes.py), message bodies (jt808_bodies.py), framing: escape, check,
# header, splitter, reassembly (jt808_framing.py). This module gathers them, so
# `protocols.jt808` keeps every name it had.
from protocols.jt808_codes import *  # noqa: F401,F403
from protocols.jt808_bodies import *  # noqa: F401,F403
from protocols.jt808_framing import *  # noqa: F401,F403
