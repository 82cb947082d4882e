-- send: one-way message throughput. The start service is the producer: it
-- floods one consumer with `bench_n` skynet.send calls of a small lua-protocol
-- message in a single callback, then does one skynet.call to the consumer; the
-- call's reply can only arrive after the consumer has handled every message
-- queued before it, so the clock stops when all messages are consumed.
--
-- Figures: msgs_per_s (messages / time from first send to the sync reply),
-- send_ns (producer-side cost of one skynet.send), then wall_s/cpu_s/cpu_pct.
-- Config: bench_n (default 500000).
local skynet = require "skynet"

local role = ...

if role == "consumer" then
	skynet.start(function()
		local count = 0
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "msg" then
				count = count + 1
			elseif cmd == "sync" then
				skynet.ret(skynet.pack(count))
			end
		end)
	end)
	return
end

local bench = require "benchlib"

bench.main("send", function()
	local n = bench.env_int("bench_n", 500000)
	local consumer = skynet.newservice("bench_send", "consumer")
	-- one round trip first, so the consumer is fully started before timing
	skynet.call(consumer, "lua", "sync")

	local send = skynet.send
	local mark = bench.mark()
	for i = 1, n do
		send(consumer, "lua", "msg", i)
	end
	local sent = bench.since(mark)
	local count = skynet.call(consumer, "lua", "sync")
	local wall = bench.since(mark)
	assert(count == n, string.format("consumer saw %s of %d messages", count, n))

	bench.report("send", {
		{ "msgs_per_s", n / wall },
		{ "send_ns", sent / n * 1e9 },
		{ "n", n },
	}, mark)
end)
