-- call: request/response latency. The start service makes `bench_n`
-- sequential skynet.call round trips to an echo service; each one is a
-- request message, a coroutine switch in the callee, a response message and
-- a resume of the caller, so this measures the full call path rather than
-- raw queue throughput.
--
-- Figures: calls_per_s, rtt_us (mean round trip), then wall_s/cpu_s/cpu_pct.
-- Config: bench_n (default 200000).
local skynet = require "skynet"

local role = ...

if role == "echo" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, _, v)
			skynet.ret(skynet.pack(v))
		end)
	end)
	return
end

local bench = require "benchlib"

bench.main("call", function()
	local n = bench.env_int("bench_n", 200000)
	local echo = skynet.newservice("bench_call", "echo")
	skynet.call(echo, "lua", "ping", 0)	-- warm up: the callee is running

	local call = skynet.call
	local mark = bench.mark()
	for i = 1, n do
		local r = call(echo, "lua", "ping", i)
		if r ~= i then
			error(string.format("call %d answered %s", i, r))
		end
	end
	local wall = bench.since(mark)

	bench.report("call", {
		{ "calls_per_s", n / wall },
		{ "rtt_us", wall / n * 1e6 },
		{ "n", n },
	}, mark)
end)
