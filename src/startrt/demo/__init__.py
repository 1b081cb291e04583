"""`make demo`: a simulated START-01 trial entered through the web services, then the report.

It sits above `web` and `simulation` (it uses both); neither imports it."""
