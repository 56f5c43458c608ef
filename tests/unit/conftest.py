from tests.apiclient import api  # noqa: F401 - the REST API fixture, shared by the domains' API tests
