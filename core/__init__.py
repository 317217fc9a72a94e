"""What every Django app of the control plane shares, below all of them (docs/architecture.md): the HTTP-free
domain errors, roles and the one permission check, the reply envelope and its exception handler, the NATS listener
loop, and the admin and REST base classes."""
