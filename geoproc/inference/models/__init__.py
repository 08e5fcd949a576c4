"""Small reference architectures, registered by name so cards never carry code."""
