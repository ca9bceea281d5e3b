"""The service on top of the library: the command line, its configuration, the loop and the systemd notifications."""
