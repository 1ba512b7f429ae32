# Wiegand 26 and 34 frames: leading even parity over the first half of the data
# bits, trailing odd parity over the second half.
#   26: P | facility (8) | card (16) | P     -> number = facility << 16 | card
#   34: P | card (32) | P                    -> number = card


def _ones(v):
    n = 0
    while v:
        n += v & 1
        v >>= 1
    return n


def decode(nbits, value):
    """Card number of a frame, or None when the length or a parity bit is wrong."""
    if nbits not in (26, 34):
        return None
    data_bits = nbits - 2
    half = data_bits // 2
    data = (value >> 1) & ((1 << data_bits) - 1)
    first = data >> half
    second = data & ((1 << half) - 1)
    p_even = (value >> (nbits - 1)) & 1
    p_odd = value & 1
    if (_ones(first) + p_even) & 1:
        return None
    if not (_ones(second) + p_odd) & 1:
        return None
    return data


def encode(nbits, number):
    """Frame for a card number (the sim and the tests use it)."""
    data_bits = nbits - 2
    half = data_bits // 2
    first = number >> half
    second = number & ((1 << half) - 1)
    p_even = _ones(first) & 1
    p_odd = 1 - (_ones(second) & 1)
    return (p_even << (nbits - 1)) | (number << 1) | p_odd
