"""CLI command modules; each registers its commands on the apps in ``editkit.cli_app``."""
