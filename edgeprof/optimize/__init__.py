"""Decisions made on top of the simulator's cost models: split choice, Pareto fronts, sweeps; never torch."""
