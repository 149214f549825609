"""The AWS side: the CloudFormation template merged into `chalice package`, its drift
check against the records, and the packaging script."""
