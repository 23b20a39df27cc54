"""`python -m bouncetag` runs the CLI."""

from bouncetag.cli import entry

entry()
