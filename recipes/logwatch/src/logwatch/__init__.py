"""logwatch: alert when a log holds too many lines matching a pattern."""
