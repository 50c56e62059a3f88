"""The Kubernetes target: the API driver, release records in the cluster, the deployer."""
