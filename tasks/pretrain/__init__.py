"""The pre-training stage: VideoMAC on frame pairs read from validated stores."""
