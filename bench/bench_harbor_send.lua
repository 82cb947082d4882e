-- harbor_send: one-way message throughput between two harbor slaves. The
-- runner starts two nodes: harbor 1 (also the master) runs this file as the
-- sink, known by the global name BENCHSINK (config `bench_role = "sink"`);
-- harbor 2 runs it as the producer, which is measured. The producer floods the
-- sink's (remote) handle with `bench_n` skynet.send calls of a small
-- lua-protocol message in a single callback, then does one skynet.call to it;
-- the reply crosses the same link after every message before it, so the clock
-- stops when all messages are consumed on the other node.
--
-- Figures: msgs_per_s (messages / time from first send to the sync reply),
-- send_ns (producer-side cost of one skynet.send), then wall_s/cpu_s/cpu_pct
-- (of the producer's node only).
-- Config: bench_n (default 200000).
local skynet = require "skynet"
local harbor = require "skynet.harbor"
require "skynet.manager"

if skynet.getenv "bench_role" == "sink" then
	skynet.start(function()
		local count = 0
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "msg" then
				count = count + 1
			elseif cmd == "sync" then
				skynet.ret(skynet.pack(count))
			end
		end)
		skynet.name("BENCHSINK", skynet.self())
		-- the runner starts the producer's node once it sees this line
		print("BENCHREADY")
	end)
	return
end

local bench = require "benchlib"

bench.main("harbor_send", function()
	local n = bench.env_int("bench_n", 200000)
	local sink = harbor.queryname "BENCHSINK"
	-- one round trip first, so the link is up before timing
	local before = skynet.call(sink, "lua", "sync")

	local send = skynet.send
	local mark = bench.mark()
	for i = 1, n do
		send(sink, "lua", "msg", i)
	end
	local sent = bench.since(mark)
	local count = skynet.call(sink, "lua", "sync") - before
	local wall = bench.since(mark)
	assert(count == n, string.format("the sink saw %s of %d messages", count, n))

	bench.report("harbor_send", {
		{ "msgs_per_s", n / wall },
		{ "send_ns", sent / n * 1e9 },
		{ "n", n },
	}, mark)
end)
