"""The `aftercare` command line: a front end of the core package `aftercare/`.

cli/main.py wires the subcommands together; each lives in cli/commands/.
"""
