"""The face of coldchain: the ``coldchain`` command and the people's commands."""
