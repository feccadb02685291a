"""The embedded sample: seeded synthetic clips written as MP4s and DAVIS/VIP/JHMDB folders."""
