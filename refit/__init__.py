"""The `refit` command line, which sits on top of `service`, `monitoring` and `training`."""
