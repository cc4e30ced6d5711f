"""Thin adapters to the host that more than one program needs.

systemd's notify socket, loop liveness, the paho client made from broker settings (``mqtt_client``),
secret files and their permission check (``secrets``).

The core (``coldchain/``) does no I/O, and programs never import each other; what the edge
agent, the gateway and the board share and that talks to the operating system lives here.
Nothing here imports a program.
"""
