"""Simulated counterparties (banks, platforms): sans-IO, each keeps an exact ground truth of money."""
