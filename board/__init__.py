"""The live alert board: alarms and crates in the browser for logistics staff (``coldchain board``)."""

__all__: list[str] = []
