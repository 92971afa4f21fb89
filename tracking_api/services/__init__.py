"""What the routers and the command line share: each operation once, validated and
audited the same way whoever calls it. Failures are ``ServiceError``s the API
answers with their status code and the command line prints."""
