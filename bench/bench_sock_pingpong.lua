-- sock_pingpong: one request/response conversation over a TCP connection
-- inside one node, the shape of a service talking to its database proxy. A
-- client service writes a request of `bench_body` bytes and waits for a
-- 4-byte answer; a server service reads the whole request, then writes the
-- answer. Every round trip crosses the socket layer four times (a write and a
-- read on each side), so this measures write hand-offs, readable events and
-- the wake-ups of the two services rather than bandwidth.
--
-- Figures: rtt_per_s, rtt_us (mean round trip), cpu_us_per_rtt (process CPU
-- over the round trips: the cost of latency, so spinning shows), then
-- wall_s/cpu_s/cpu_pct.
-- Config: bench_n (default 50000), bench_body (request bytes, default 8192).
local skynet = require "skynet"
local socket = require "skynet.socket"

local role, arg = ...

local ACK = "pong"

if role == "server" then
	-- arg: the request size. Answers every complete request with ACK until the
	-- client closes.
	local body = math.tointeger(tonumber(arg))
	skynet.start(function()
		local listen, _, port = socket.listen("127.0.0.1", 0)
		skynet.dispatch("lua", function(_, _, cmd)
			assert(cmd == "port")
			skynet.ret(skynet.pack(port))
		end)
		socket.start(listen, function(id)
			socket.start(id)
			skynet.fork(function()
				while true do
					local req = socket.read(id, body)
					if not req then
						break
					end
					socket.write(id, ACK)
				end
				socket.close(id)
			end)
		end)
	end)
	return
end

local bench = require "benchlib"

bench.main("sock_pingpong", function()
	local n = bench.env_int("bench_n", 50000)
	local body = bench.env_int("bench_body", 8192)
	local request = string.rep("x", body)
	local server = skynet.newservice("bench_sock_pingpong", "server", body)
	local port = skynet.call(server, "lua", "port")
	local id = assert(socket.open("127.0.0.1", port))
	-- warm up: the connection is accepted and the server's reader is running
	socket.write(id, request)
	assert(socket.read(id, #ACK) == ACK)

	local write, read = socket.write, socket.read
	local mark = bench.mark()
	for i = 1, n do
		write(id, request)
		local ack = read(id, #ACK)
		if ack ~= ACK then
			error(string.format("round trip %d answered %s", i, ack))
		end
	end
	local wall = bench.since(mark)
	local cpu = bench.cpu_s()
	socket.close(id)

	bench.report("sock_pingpong", {
		{ "rtt_per_s", n / wall },
		{ "rtt_us", wall / n * 1e6 },
		{ "cpu_us_per_rtt", cpu and mark.cpu and (cpu - mark.cpu) / n * 1e6 or 0 },
		{ "body", body },
		{ "n", n },
	}, mark)
end)
