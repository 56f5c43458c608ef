from tests.s3server import aws_credentials, moto_server, private_moto_server  # noqa: F401 - fixtures
