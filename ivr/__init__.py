"""An IVR server for Asterisk (FastAGI + AMI)."""
