"""The evaluation stage: label propagation with frozen encoders (DAVIS J&F, VIP mIoU, JHMDB PCK)."""
