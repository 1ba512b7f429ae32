"""The jifang gateway: sources -> Event -> pipeline -> sinks (docs/gateway.md).

Follow an alarm: sources/dc09.py (frames in) -> event.py (the one Event type) ->
pipeline.py (validate, enrich, dedupe, commit; supervision.py watches every device)
-> store.py (hash-chained log, also the outbox) -> sinks/outbox.py -> sinks/dc09.py
(to the 110 center or an upper gateway). app.py wires it from config.py.
"""
