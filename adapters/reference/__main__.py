"""`python -m adapters.reference serve ...` without the connector CLI."""

from adapters.reference.cli import receiver

receiver(prog_name="python -m adapters.reference")
