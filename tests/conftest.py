"""Shared by every test folder: this folder on the import path, for ``pgscratch``."""
