"""A load test to aim at a pet-api deployment: python -m bench --help."""
