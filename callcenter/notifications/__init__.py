"""SMS and other notifications (issue 16): templates, channels (SMPP 3.4, an HTTP provider), the sender job, delivery
receipts, failures reported on the work order."""
