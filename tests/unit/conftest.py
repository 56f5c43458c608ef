from tests.apiclient import api, api_recording_stores  # noqa: F401 - REST API fixtures for the API tests
