"""The OCI distribution protocol: the registry client, credentials, uploads."""
