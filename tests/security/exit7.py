"""Positive control: deliberately exits with status 7."""
import sys

print("exiting with 7")
sys.exit(7)
