#!/usr/bin/env bash
# Removes the kind quickstart's cluster and everything in it (up.sh builds it again).
# Deleting a cluster that does not exist succeeds, so this is safe to run twice.
set -euo pipefail

cluster="${SCALINGDEMO_CLUSTER:-scalingdemo}"
kind delete cluster --name "${cluster}"
