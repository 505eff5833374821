"""shipper: ships Python applications' log files to Amazon CloudWatch Logs."""

__version__ = "0.1.0"
