"""The ``vmac`` command line (``vmac = cli.main:main``)."""
