"""ScalingDemo operator: reconciles a ScalingDemo resource into a running autoscaling demo."""
