"""The probe board's firmware and the crate's physics, simulated over a pseudo-terminal.

``model`` is the pure physics (temperature as a function of parameters and time),
``board`` the pure sentence emitter, ``link`` the pty adapter, ``__main__`` the
``coldchain sim`` command. The protocol is documented in ``docs/firmware-protocol.md``.
"""

__all__: list[str] = []
