"""The messaging providers, as the service sees them: the clients that send
through them (client.py). The mock providers that stand in for them are
messaging/mock/."""
