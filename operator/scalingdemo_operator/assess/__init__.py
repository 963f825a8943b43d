"""PURE: what one reconcile observed -> the ScalingDemo's status and the events to post.

No I/O and no clock: the reconcile gathers the observations and the time, the assessment
decides. `conditions` computes each condition, `topics_ready` the topics' part, `warnings` which
changes deserve a Warning event, and `status` puts them together.
"""
