from tests.smppserver import smsc  # noqa: F401 - fixture
