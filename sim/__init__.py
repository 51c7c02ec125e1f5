"""The SimPy harness: world, network, faults, traffic, scenarios, oracle and the CLI."""
