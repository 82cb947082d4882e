-- Writes to one socket keep their order and lose nothing, whichever thread writes them:
-- four writer services share one connection and interleave high and low priority sends,
-- small ones (written straight from the worker while nothing is queued) and 100 KB ones
-- (more than the kernel takes while the reader is stalled, so the rest queues in the
-- socket thread and later sends queue behind it). The reader checks every frame is whole
-- and each writer's frames of each priority arrive in the order they were sent (low
-- priority may be overtaken by high, as upstream allows, never by its own kind). Then a
-- peer that closes mid-write: the writer's sends stop being accepted, its socket leaves
-- netstat, and the service goes on.
local skynet = require "skynet"
local socket = require "skynet.socket"

local mode, arg = ...

local WRITERS = 4
local FRAMES = 60
local HEADER = ">I1I1I4I4" -- writer, priority (0 high, 1 low), sequence, body length

-- The body of frame `seq` of writer `w`: its length varies, its bytes name the frame.
local function body(w, prio, seq)
	local len
	if seq % 7 == 0 then
		len = 100 * 1024
	else
		len = (seq * 37 + w * 11) % 300
	end
	return string.rep(string.char(65 + (w * 2 + prio + seq) % 26), len)
end

local function frame(w, prio, seq)
	local b = body(w, prio, seq)
	return string.pack(HEADER, w, prio, seq, #b) .. b
end

if mode == "writer" then
	local w = tonumber(arg)
	local tester = require "tester"
	tester.serve({
		-- Sends FRAMES frames of each priority, alternating, yielding now and then so
		-- the socket thread drains its queue and direct writes resume.
		write = function(id)
			for seq = 1, FRAMES do
				assert(socket.write(id, frame(w, 0, seq)), "high-priority send refused")
				assert(socket.lwrite(id, frame(w, 1, seq)), "low-priority send refused")
				if seq % 5 == 0 then
					skynet.sleep(0)
				end
			end
			skynet.retpack(true)
		end,
		-- Keeps sending 64 KB chunks until a send is refused.
		flood = function(id)
			local chunk = string.rep("z", 64 * 1024)
			local sent = 0
			while socket.write(id, chunk) do
				sent = sent + 1
				skynet.sleep(0)
			end
			skynet.retpack(sent)
		end,
	})
	return
end

local tester = require "tester"
local eq, ok = tester.eq, tester.ok

local function in_netstat(id)
	for _, s in ipairs(socket.netstat()) do
		if s.id == id then
			return true
		end
	end
	return false
end

local function connected_pair()
	local waiting
	local accepted
	local lid, _, port = socket.listen("127.0.0.1", 0)
	socket.start(lid, function(id)
		accepted = id
		if waiting then
			skynet.wakeup(waiting)
		end
	end)
	local c = assert(socket.open("127.0.0.1", port))
	if not accepted then
		waiting = coroutine.running()
		skynet.wait(waiting)
	end
	socket.close(lid)
	return c, accepted
end

tester.run("test_socket_order", function()
	local writers = {}
	for w = 1, WRITERS do
		writers[w] = skynet.newservice("test_socket_order", "writer", tostring(w))
	end

	-- the order check: the reader starts late, so the big frames back up
	local c, s = connected_pair()
	local done = tester.fork_all(WRITERS, function(w)
		return skynet.call(writers[w], "lua", "write", c)
	end)
	skynet.sleep(20)
	socket.start(s)
	local next_seq = {}
	local frames = 0
	while frames < WRITERS * FRAMES * 2 do
		local head = socket.read(s, string.packsize(HEADER))
		ok(head, "connection open after " .. frames .. " frames")
		local w, prio, seq, len = string.unpack(HEADER, head)
		ok(w >= 1 and w <= WRITERS and prio <= 1, "a frame header, got " .. w .. "/" .. prio)
		local key = w * 2 + prio
		eq(seq, (next_seq[key] or 0) + 1, "writer " .. w .. " priority " .. prio .. " in order")
		next_seq[key] = seq
		local expected = body(w, prio, seq)
		eq(len, #expected, "frame length")
		local got = len > 0 and socket.read(s, len) or ""
		ok(got == expected, "frame " .. w .. "/" .. prio .. "/" .. seq .. " intact")
		frames = frames + 1
	end
	for w, r in ipairs(done()) do
		ok(r[1] and r[2], "writer " .. w .. " finished: " .. tostring(r[2]))
	end
	socket.close(c)
	socket.close(s)

	-- a peer that closes mid-write
	c, s = connected_pair()
	local flood = tester.fork_all(1, function()
		return skynet.call(writers[1], "lua", "flood", c)
	end)
	socket.start(s)
	local got = 0
	while got < 256 * 1024 do
		local chunk = socket.read(s)
		ok(chunk, "data before the close")
		got = got + #chunk
	end
	socket.close(s)
	-- writes to the dead peer fail in the kernel; closing our end makes sends refused
	skynet.sleep(10)
	socket.close(c)
	local r = flood()[1]
	ok(r[1] and r[2] >= 4, "the flood ended once refused: " .. tostring(r[2]))
	tester.spin_until(function()
		return not in_netstat(c) and not in_netstat(s)
	end, 10)
	-- the writer still serves
	local d = tester.fork_all(1, function()
		local c2, s2 = connected_pair()
		local res = skynet.call(writers[2], "lua", "write", c2)
		socket.close(c2)
		socket.close(s2)
		return res
	end)
	-- nobody reads s2: the writer's sends must not block it even then
	ok(d()[1][2], "a writer still writes after the peer-closed flood")
end)
