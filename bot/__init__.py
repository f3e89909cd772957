"""Questions in, answers out: the `Answerer`, and the CLI and Slack front ends over it."""
