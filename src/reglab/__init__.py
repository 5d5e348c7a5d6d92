"""reglab: a laboratory for neural-network regularization."""

from reglab.devices import claim_cpu_devices

__version__ = "0.1.0"

claim_cpu_devices()  # one JAX CPU device per core, before JAX starts (see devices.py)
