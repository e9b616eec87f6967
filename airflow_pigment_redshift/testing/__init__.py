"""Local emulators and pytest fixtures for tests and demos; product code never imports this package."""
