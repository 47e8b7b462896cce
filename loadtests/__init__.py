"""Locust load tests of the HTTP gateway."""
