-- sharedata: a ~10 MB configuration table loaded once with
-- skynet.sharedata.core and read by 1000 agents (see sharebench.lua).
-- Config: bench_n (1000 agents), bench_share_items (17000).
require "sharebench" ("sharedata")
