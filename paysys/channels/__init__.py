"""Channel adapters: the paysys side of each channel wire protocol."""
