"""The telephony layer: the one AMI client and the one FastAGI server of a running platform."""
