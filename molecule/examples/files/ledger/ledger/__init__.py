"""Test-ground stand-in of the api-postgres example's ledger API."""
