"""Everything that reads or writes the log directory."""
