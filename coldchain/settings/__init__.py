"""Settings: parsed TOML read through one typed reader, and the keys every program shares.

- ``table``: ``Table`` (errors name file, key and problem; typos refused) and ``load_toml``.
- ``broker``: the ``[mqtt]`` keys; ``influx``: the ``[influxdb]`` keys.
- ``argtypes``: command-line option types, so argparse refuses a bad value first.
"""

__all__ = ["argtypes", "broker", "influx", "table"]
