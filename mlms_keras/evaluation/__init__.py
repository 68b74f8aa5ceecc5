"""Objective metrics (Merlin's definitions): MCD, F0 RMSE, V/UV error, duration RMSE."""
