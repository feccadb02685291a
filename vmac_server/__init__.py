"""vmac's local Prefect server and the lifetime of what a command starts: process management, kept
out of ``cli`` (which parses, builds configs, checks, runs flows and renders).

- ``supervisor``: the long-lived local Prefect API that commands share, its lease and idle stop;
- ``trust``: whether a recorded server is the one vmac started, and its private files;
- ``lifetime``: nothing a command starts outlives it (a watchdog, Ctrl-C, parent-death signals).

Only ``cli`` imports this package; it imports ``tasks.io`` alone of the project
(``tests/test_architecture.py``). docs/architecture.md, "Processes", says what Prefect's own
``prefect server start --background`` does and why vmac keeps these parts.
"""
