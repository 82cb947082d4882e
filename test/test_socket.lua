-- skynet.socket over TCP inside one node: listening on an ephemeral port, accepting,
-- read (sized and unsized), readline with separators, readall, block, write/lwrite and
-- table writes, close and shutdown from either side, onclose hooks, a local close
-- waking a blocked reader, pause/resume past the 128K buffer mark, the buffer limit,
-- send-queue warnings to a custom handler, handing sockets to another service (an
-- accepted id, and an abandoned one), netstat entries, a refused connection and
-- listen/start errors.
local skynet = require "skynet"
local socket = require "skynet.socket"

local mode = ...

if mode == "owner" then
	-- Takes over the socket ids it is given and answers each line upper-cased;
	-- "BYE" makes it close the connection.
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, id)
			assert(cmd == "take")
			local got = socket.start(id)
			skynet.retpack(got)
			if got then
				skynet.fork(function()
					while true do
						local line = socket.readline(id)
						if not line or line == "BYE" then
							break
						end
						socket.write(id, line:upper() .. "\n")
					end
					socket.close(id)
				end)
			end
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, raises = tester.eq, tester.ok, tester.raises

-- Connections accepted by the listening socket, in arrival order.
local accepted = {}
local accept_waiter

local function on_accept(id, addr)
	accepted[#accepted + 1] = { id = id, addr = addr }
	if accept_waiter then
		local co = accept_waiter
		accept_waiter = nil
		skynet.wakeup(co)
	end
end

local function next_accepted()
	while #accepted == 0 do
		accept_waiter = coroutine.running()
		skynet.wait(accept_waiter)
	end
	return table.remove(accepted, 1)
end

-- A connected pair: client id, server id (started here), the peer text of the accept.
local function pair(port)
	local c, err = socket.open("127.0.0.1", port)
	ok(c, "open: " .. tostring(err))
	local a = next_accepted()
	eq(socket.start(a.id), a.id, "start an accepted id")
	return c, a.id, a.addr
end

-- Bytes that differ along the string, so a misordered or lost chunk shows.
local function pattern(n)
	local parts = {}
	local i = 0
	local size = 0
	while size < n do
		local s = string.format("%08d|", i)
		parts[#parts + 1] = s
		size = size + #s
		i = i + 1
	end
	return table.concat(parts):sub(1, n)
end

local function find_stat(id)
	for _, s in ipairs(socket.netstat()) do
		if s.id == id then
			return s
		end
	end
end

tester.run("test_socket", function()
	-- listen on an ephemeral port: the real port comes back from listen
	local lid, ip, port = socket.listen("127.0.0.1", 0)
	eq(ip, "127.0.0.1", "listen address")
	ok(math.type(port) == "integer" and port > 0, "listen port " .. tostring(port))
	eq(socket.start(lid, on_accept), lid, "start the listening socket")
	raises("Listen error", socket.listen, "127.0.0.1", port)

	-- reads of every kind
	local c, s, peer = pair(port)
	ok(peer:match "^127%.0%.0%.1:%d+$", "accept peer text " .. peer)
	ok(not socket.invalid(s) and not socket.disconnected(s), "server socket is live")
	socket.write(c, "hello\nworld\r\nabc")
	eq(socket.readline(s), "hello", "readline default separator")
	eq(socket.readline(s, "\r\n"), "world", "readline \\r\\n")
	eq(socket.read(s, 3), "abc", "sized read")
	eq(socket.read(s, 0), "", "read of 0 bytes")

	socket.write(c, "12")
	skynet.fork(function()
		skynet.sleep(5)
		socket.write(c, "345")
	end)
	eq(socket.read(s, 5), "12345", "sized read waits for the rest")

	socket.lwrite(c, "low")
	eq(socket.read(s, 3), "low", "lwrite")
	socket.write(c, { "t", "a", "b", 1 })
	eq(socket.read(s, 4), "tab1", "table write")
	socket.write(c, "xyz")
	local got = ""
	while #got < 3 do
		local part = socket.read(s)
		ok(part, "unsized read")
		got = got .. part
	end
	eq(got, "xyz", "unsized reads")

	local wrote = false
	skynet.fork(function()
		skynet.sleep(5)
		socket.write(c, "wake")
		wrote = true
	end)
	eq(socket.block(s), true, "block returns on data")
	eq(wrote, true, "block waited until the data was sent")
	eq(socket.read(s, 4), "wake", "data after block")

	socket.write(s, "pong\n")
	eq(socket.readline(c), "pong", "server to client")

	-- the peer closes: readall gets everything, then reads fail
	local hooked
	socket.onclose(s, function(id)
		hooked = id
	end)
	socket.write(c, "tail-data")
	socket.close(c)
	ok(socket.invalid(c), "closed client is invalid")
	eq(socket.readall(s), "tail-data", "readall until close")
	eq(hooked, s, "onclose hook ran")
	local r, rest = socket.read(s)
	eq(r, false, "read after close")
	eq(rest, "", "nothing left")
	eq(socket.readline(s), false, "readline after close")
	eq(socket.disconnected(s), true, "disconnected")
	eq(socket.invalid(s), false, "still held until closed")
	socket.close(s)
	eq(socket.invalid(s), true, "invalid after close")
	eq(socket.disconnected(s), nil, "unknown id")

	-- a sized read cut short by the close returns false and the partial data
	c, s = pair(port)
	socket.write(c, "part")
	skynet.fork(function()
		skynet.sleep(5)
		socket.close(c)
	end)
	r, rest = socket.read(s, 10)
	eq(r, false, "short read")
	eq(rest, "part", "partial data")
	socket.close(s)

	-- closing a socket another coroutine is reading wakes that reader first
	c, s = pair(port)
	local order = {}
	local reader_done = tester.latch(1)
	skynet.fork(function()
		local v = socket.read(s, 100)
		order[#order + 1] = "reader " .. tostring(v)
		reader_done.done()
	end)
	skynet.yield()
	socket.close(s)
	order[#order + 1] = "closed"
	reader_done.wait()
	eq(table.concat(order, ","), "reader false,closed", "reader woken before close returns")
	eq(socket.read(c), false, "the peer sees the close")
	socket.close(c)

	-- shutdown: immediate close, the object stays until close
	c, s = pair(port)
	socket.shutdown(s)
	eq(socket.read(c), false, "peer sees the shutdown")
	eq(socket.invalid(s), false, "shut down but still held")
	socket.close(s)
	socket.close(c)

	-- an unread socket past 128K is paused, and resumed once a read has to wait.
	-- The events already queued when the pause takes effect may still bring the
	-- whole payload in, so a second chunk sent after the pause makes sure the
	-- reader ends up waiting on the paused socket.
	c, s = pair(port)
	local big = pattern(300 * 1024)
	socket.write(c, big)
	tester.wait_log(string.format("Pause socket (%d) size : ", s))
	socket.write(c, "END\n")
	eq(socket.read(s, #big) == big, true, "300K intact through pause/resume")
	eq(socket.readline(s), "END", "data sent while paused")
	tester.wait_log(string.format("Resume socket (%d)", s))
	eq(#tester.log_lines(string.format("Resume socket (%d)", s)), 1, "resumed once")
	socket.close(s)
	socket.close(c)

	-- the buffer limit closes a socket that buffers too much
	c, s = pair(port)
	socket.limit(s, 1000)
	socket.write(c, pattern(5000))
	tester.wait_log(string.format("socket buffer overflow: fd=%d size=", s))
	eq(socket.read(c), false, "the peer sees the overflow close")
	socket.close(s)
	socket.close(c)

	-- send-queue warnings go to the warning handler instead of the log
	c, s = pair(port)
	local levels = {}
	local level_waiter
	socket.warning(c, function(id, kbytes)
		eq(id, c, "warning id")
		levels[#levels + 1] = kbytes
		-- wake the waiter once: the token is its coroutine, which may be parked
		-- in a socket read by the time the next warning comes
		local w = level_waiter
		level_waiter = nil
		if w then
			skynet.wakeup(w)
		end
	end)
	-- more than the kernel buffers hold while the reader is paused
	local huge = pattern(12 * 1024 * 1024)
	socket.write(c, huge)
	while #levels == 0 do
		level_waiter = coroutine.running()
		skynet.wait(level_waiter)
	end
	ok(levels[1] >= 1024, "first warning at 1M or more, got " .. tostring(levels[1]))
	eq(socket.read(s, #huge) == huge, true, "12M intact")
	while levels[#levels] ~= 0 do
		level_waiter = coroutine.running()
		skynet.wait(level_waiter)
	end
	eq(tester.find_log(string.format("need to send out (fd = %d)", c)), nil, "no default warning line")
	socket.close(s)
	socket.close(c)

	-- an accepted id handed to another service before it was started here
	local owner = skynet.newservice(SERVICE_NAME, "owner")
	local c2 = assert(socket.open("127.0.0.1", port))
	local a2 = next_accepted()
	eq(skynet.call(owner, "lua", "take", a2.id), a2.id, "owner started the accepted id")
	socket.write(c2, "ping\n")
	eq(socket.readline(c2), "PING", "the owner serves it")

	-- a started socket abandoned here and started by the other service
	local c3, s3 = pair(port)
	socket.write(c3, "one\n")
	eq(socket.readline(s3), "one", "read here first")
	socket.abandon(s3)
	ok(socket.invalid(s3), "abandoned id is no longer ours")
	eq(skynet.call(owner, "lua", "take", s3), s3, "owner took the abandoned id")
	socket.write(c3, "two\n")
	eq(socket.readline(c3), "TWO", "the owner serves the transferred socket")

	-- netstat
	local ls = find_stat(lid)
	ok(ls, "listening socket in netstat")
	eq(ls.type, "LISTEN", "listen type")
	eq(ls.address, skynet.self(), "listen owner")
	eq(ls.sock, "127.0.0.1:" .. port, "listen address")
	ok(ls.accept >= 9, "accept count " .. tostring(ls.accept))
	local st = find_stat(s3)
	ok(st, "transferred socket in netstat")
	eq(st.type, "TCP", "tcp type")
	eq(st.address, owner, "netstat shows the new owner")
	ok(st.read >= 8 and st.write >= 4, "byte counts")
	local cs = find_stat(c3)
	eq(cs.peer, "127.0.0.1:" .. port, "client peer")

	socket.write(c2, "BYE\n")
	eq(socket.readline(c2), false, "owner closed the connection")
	socket.close(c2)
	socket.write(c3, "BYE\n")
	eq(socket.readline(c3), false, "owner closed the transferred one")
	socket.close(c3)

	-- a refused connection: listen and close to find a port nobody serves
	local tmp, _, dead_port = socket.listen("127.0.0.1", 0)
	socket.close(tmp)
	local none, err = socket.open("127.0.0.1", dead_port)
	eq(none, nil, "refused open")
	eq(err, "Connection refused", "refused text")

	-- starting an id that does not exist
	local bad, why = socket.start(987654)
	eq(bad, nil, "start of an unknown id")
	eq(why, "invalid socket", "start error text")

	socket.close(lid)
	ok(not find_stat(lid), "closed listener gone from netstat")
end)
