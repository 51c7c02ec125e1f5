"""The payment system under test: sans-IO, time and randomness come in as inputs."""
