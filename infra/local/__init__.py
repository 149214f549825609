"""The local stack: DynamoDB Local, the WeChat sandbox, the API, the scheduler."""
