-- seri: the Lua serializer behind every lua-protocol message. Runs
-- `bench_n` skynet.pack + skynet.unpack round trips of a nested table that
-- packs to about 700 bytes (freeing each buffer with skynet.trash, as the
-- dispatcher does), then times pack alone and unpack alone over a quarter of
-- that count each to show where the time goes.
--
-- Figures: roundtrips_per_s, pack_ns and unpack_ns (one call each), bytes
-- (packed size), then wall_s/cpu_s/cpu_pct of the round-trip phase.
-- Config: bench_n (default 100000).
local skynet = require "skynet"
local bench = require "benchlib"

-- A message shaped like real traffic: a header of scalars, an array of
-- records with short strings, numbers and booleans, and a nested map.
local function sample()
	local items = {}
	for i = 1, 10 do
		items[i] = {
			id = 1000 + i,
			name = "item_" .. i,
			count = i * 3,
			price = i * 1.25,
			bound = i % 2 == 0,
		}
	end
	return {
		cmd = "update",
		session = 123456,
		uid = 9876543210,
		ok = true,
		ratio = 0.75,
		tags = { "alpha", "beta", "gamma", "delta" },
		items = items,
		pos = { x = 10.5, y = -3.25, z = 0 },
		note = "a short free-text note that makes the message more realistic",
	}
end

bench.main("seri", function()
	local n = bench.env_int("bench_n", 100000)
	local pack, unpack, trash = skynet.pack, skynet.unpack, skynet.trash
	local t = sample()
	local bytes
	do
		local msg, sz = pack(t)
		bytes = sz
		local back = unpack(msg, sz)
		trash(msg, sz)
		assert(back.items[10].name == "item_10" and back.pos.y == -3.25, "round trip changed the table")
	end

	local mark = bench.mark()
	for _ = 1, n do
		local msg, sz = pack(t)
		unpack(msg, sz)
		trash(msg, sz)
	end
	local wall = bench.since(mark)
	local cpu = bench.cpu_s()

	local part = n // 4
	local p0 = skynet.hpc()
	for _ = 1, part do
		local msg, sz = pack(t)
		trash(msg, sz)
	end
	local pack_ns = (skynet.hpc() - p0) / part

	local msg, sz = pack(t)
	local u0 = skynet.hpc()
	for _ = 1, part do
		unpack(msg, sz)
	end
	local unpack_ns = (skynet.hpc() - u0) / part
	trash(msg, sz)

	local fields = {
		{ "roundtrips_per_s", n / wall },
		{ "pack_ns", pack_ns },
		{ "unpack_ns", unpack_ns },
		{ "bytes", bytes },
		{ "n", n },
		{ "wall_s", wall },
	}
	if cpu and mark.cpu then
		fields[#fields + 1] = { "cpu_s", cpu - mark.cpu }
		fields[#fields + 1] = { "cpu_pct", (cpu - mark.cpu) / wall * 100 }
	end
	bench.report("seri", fields)
end)
