"""End-to-end tests: real Asterisk (from the chroot) driven by SIPp callers."""
