"""The messaging providers: the clients that send through them (client.py) and
the mock providers that stand in for them (mock.py)."""
