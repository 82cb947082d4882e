-- Node names and addresses of the two-node example (the `cluster` config key).
db = "127.0.0.1:2528"
app = "127.0.0.1:2529"
