"""Kubernetes manifests of every workload of the one image, rendered from deploy/workloads.py (commands, ports,
probes, writable paths) and deploy/access.py (identities, Secrets, NetworkPolicies).

`python -m deploy.k8s` writes the plain YAML the fleet's hub applies (`kubectl apply -f
deploy/k8s/base/resources/`) and the kustomizations around it; `--check` fails when a committed file differs
from what this package renders (a test runs it). deploy/k8s/README.md says what each file holds.
"""
