"""What every stage shares: the user-error base class, hardware facts, the Dask
connection, and text tables and suggestions. Nothing heavy is imported here."""
