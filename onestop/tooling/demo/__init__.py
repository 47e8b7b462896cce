"""The demonstration region and the cashier walk-through."""
