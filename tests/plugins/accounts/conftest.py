from tests.mail import smtp_server  # noqa: F401 - a fixture of the accounts plugin's tests
