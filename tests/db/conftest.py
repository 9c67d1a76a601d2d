from tests.mail import smtp_server  # noqa: F401 - a fixture of the EXPLAIN guard (its tour sends mail)
