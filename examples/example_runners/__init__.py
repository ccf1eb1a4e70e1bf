"""Example runners: a cost scan, an invoice, and a notification digest."""
