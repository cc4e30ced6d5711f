"""The gateway: MQTT telemetry in, validated and de-duplicated points into InfluxDB, alarms out."""

__all__: list[str] = []
