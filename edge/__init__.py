"""The crate's edge agent: probes -> SQLite spool -> MQTT, with a local alarm.

What it publishes (all QoS 1, crate ``{crate}``):

- ``coldchain/v1/crates/{crate}/telemetry``: one ``coldchain.wire.Telemetry`` per sampling
  tick, ``seq`` +1 per message and never reused. Optional extra fields: ``profile`` (the
  crate's profile name); ``powered_on`` (when the serial probe board was switched on, from
  its heartbeat's uptime, in the clock of ``ts``: the gateway's start delay counts from it);
  ``held_from`` (always: the spool's low-water mark as the message leaves, so a gateway
  meeting the crate without state waits for the seqs from there it has not stored);
  ``ts_corrected: true`` (taken while the wall clock was unset, restamped from the monotonic
  clock, ``powered_on`` with it); ``ts_uncertain: true`` (taken with an unset clock in an
  earlier boot: ``ts`` is the wrong clock's).
- ``coldchain/v1/crates/{crate}/status`` (retained): ``online`` on connect, ``offline`` as
  the last will and on a clean stop.
- ``coldchain/v1/crates/{crate}/events``: ``{"v":1,"crate":…,"ts":…,"event":NAME,…}`` with
  NAME one of ``lid_open``, ``lid_closed``; ``excursion`` (``state`` active/cleared, ``sensor``,
  ``rule``, ``severity``, ``threshold_c``, ``value_c``, ``started_ts``, ``seq``; when cleared also
  ``ended_ts`` and ``peak_c``); ``gap`` (``reason`` spool_full or not_in_spool, ``first_seq``,
  ``last_seq``, ``count``; spool_full adds ``from_ts``/``to_ts``): these seqs are gone for good;
  ``stuck_value`` / ``stuck_value_cleared`` (``sensor``, ``value_c``); ``heartbeat_missing`` /
  ``heartbeat_restored`` (``probe``); ``clock_corrected`` (``first_seq``, ``last_seq``,
  ``count``, ``uncertain``); ``seq_reset`` (``stored_through``, ``shift``). Events stamped by
  an unset clock are held and restamped like telemetry (``ts_corrected`` / ``ts_uncertain``).

It listens on ``coldchain/v1/crates/{crate}/ack`` for the gateway's ``stored_through``.
"""
