"""reglab: a laboratory for neural-network regularization.

Importing reglab changes nothing in JAX. To train an ensemble on every core, call
``reglab.placement.claim_cpu_devices()`` before any JAX work (the command line does).
"""

__version__ = "0.1.0"
