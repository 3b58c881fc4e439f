"""The stores: the only code that talks to the database."""
