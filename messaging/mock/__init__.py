"""The mock providers: stand-ins for the SMS and the email provider, real HTTP
servers with failures on demand (providers.py). They imitate the outside world,
so they import nothing of the service's HTTP edge."""
