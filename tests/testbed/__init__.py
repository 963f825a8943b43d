"""A real local test bed: etcd, kube-apiserver, controllers, kwok nodes and Kafka."""
