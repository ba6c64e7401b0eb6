"""The errors of bad input, which a retry would meet again (refiner_lib.runtime
refuses such a retry). Kept apart so that a light step can name them without
importing the modules that raise them (and their heavy dependencies)."""


class InputError(ValueError):
    """Bad input data: the message names the file, record and field."""


class ConfigError(ValueError):
    """A config the workflow cannot run: the message names the file and key."""


class ModelSourceError(RuntimeError):
    """A model source that cannot be materialized: the message names the source and file."""
