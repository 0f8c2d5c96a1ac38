"""System models that consume profiles (links, per-point costs); pure Python and numpy, never torch."""
