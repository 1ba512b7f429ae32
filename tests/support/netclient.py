"""Client moves the connection-limit tests share: see whether the server closed a
connection, and send a frame a byte at a time."""
import asyncio


async def closed_by_server(reader, timeout=20):
    """True once the server closed (or reset) the connection; whatever it sent first is read past."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
        return True
    except ConnectionResetError:
        return True


async def trickle(reader, writer, data, gap=0.1):
    """Write `data` one byte every `gap` seconds until it is all sent or the server
    closes the connection (a client keeping a frame half-sent)."""
    for b in data:
        await asyncio.sleep(gap)
        if writer.is_closing() or reader.at_eof():
            return
        try:
            writer.write(bytes([b]))
            await writer.drain()
        except ConnectionError:
            return
