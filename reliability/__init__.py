"""Long reliability runs (load, faults) outside `make test`: see `make reliability`."""
