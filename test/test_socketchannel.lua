-- skynet.socketchannel against small line-protocol servers in the same node:
-- order mode (concurrent requests, multi-part answers, a reader answering false,
-- a reader raising, a request without response), session mode (answers out of
-- order, multi-part, unknown sessions, failures reaching every waiter), auth
-- (run first on each connection; failure), reconnecting after the peer dropped the
-- connection (mid-request and while idle), backup hosts, changehost, close, custom
-- socket_readline, and the refused connection the db clients see
-- ("Connect failed ..." then the [Error: socket] object).
local skynet = require "skynet"
local socket = require "skynet.socket"

local mode, server_name = ...

if mode == "server" then
	-- Replies are "<tag><text>" lines (order mode) or "<session> <tag><text>"
	-- (session mode); tag "=" final, "+" more parts follow, "!" failure.
	local stats = { connections = 0, first = {} }

	local function serve(id)
		local first = true
		while true do
			local line = socket.readline(id)
			if not line then
				break
			end
			if first then
				stats.first[#stats.first + 1] = line
				first = false
			end
			local cmd, rest = line:match "^(%S+)%s?(.*)$"
			if cmd == "ECHO" then
				socket.write(id, "=" .. rest .. "\n")
			elseif cmd == "WHO" then
				socket.write(id, "=" .. server_name .. "\n")
			elseif cmd == "MULTI" then
				local n = tonumber(rest)
				for i = 1, n - 1 do
					socket.write(id, "+part" .. i .. "\n")
				end
				socket.write(id, "=part" .. n .. "\n")
			elseif cmd == "FAIL" then
				socket.write(id, "!" .. rest .. "\n")
			elseif cmd == "AUTH" then
				socket.write(id, rest == "secret" and "=OK\n" or "!NO\n")
			elseif cmd == "DROP" or cmd == "BYE" then
				break
			elseif cmd == "S" then
				-- answered after a delay, so later requests may be answered first
				local session, delay, text = rest:match "^(%d+) (%d+) (.*)$"
				skynet.fork(function()
					skynet.sleep(tonumber(delay))
					socket.write(id, session .. " =" .. text .. "\n")
				end)
			elseif cmd == "SM" then
				local session, n = rest:match "^(%d+) (%d+)$"
				n = tonumber(n)
				for i = 1, n - 1 do
					socket.write(id, session .. " +part" .. i .. "\n")
				end
				socket.write(id, session .. " =part" .. n .. "\n")
			elseif cmd == "SFAIL" then
				local session, text = rest:match "^(%d+) (.*)$"
				socket.write(id, session .. " !" .. text .. "\n")
			else
				socket.write(id, "!unknown command\n")
			end
		end
		socket.close(id)
	end

	skynet.start(function()
		local lid, _, port = socket.listen("127.0.0.1", 0)
		socket.start(lid, function(id)
			stats.connections = stats.connections + 1
			socket.start(id)
			skynet.fork(serve, id)
		end)
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "port" then
				skynet.retpack(port)
			else
				skynet.retpack(stats)
			end
		end)
	end)
	return
end

local sc = require "skynet.socketchannel"
local tester = require "tester"
local eq, ok, raises, deep_eq = tester.eq, tester.ok, tester.raises, tester.deep_eq

local function line_reader(sock)
	local line = sock:readline "\n"
	local tag, text = line:sub(1, 1), line:sub(2)
	if tag == "!" then
		return false, text
	end
	return true, text, tag == "+"
end

local function session_reader(sock)
	local line = sock:readline "\n"
	local session, tag, text = line:match "^(%d+) (.)(.*)$"
	return tonumber(session), tag ~= "!", text, tag == "+"
end

-- pcall that returns the error value itself (the socket error is a table)
local function catch(f, ...)
	local done, err = pcall(f, ...)
	ok(not done, "expected the call to fail")
	return err
end

local function is_socket_error(err, what)
	ok(rawequal(err, sc.error), (what or "error") .. ": expected socketchannel.error, got " .. tostring(err))
	eq(tostring(err), "[Error: socket]", "socket error text")
end

local function new_server(name)
	local s = skynet.newservice(SERVICE_NAME, "server", name)
	return s, skynet.call(s, "lua", "port")
end

local function dead_port()
	local id, _, port = socket.listen("127.0.0.1", 0)
	socket.close(id)
	return port
end

tester.run("test_socketchannel", function()
	local one, port1 = new_server("one")
	local two, port2 = new_server("two")

	-- order mode
	local ch = sc.channel { host = "127.0.0.1", port = port1, nodelay = true }
	eq(ch:connect(true), true, "connect once")
	eq(ch:request("ECHO a\n", line_reader), "a", "echo")
	local results = {}
	local all = tester.latch(5)
	for i = 1, 5 do
		skynet.fork(function()
			results[i] = ch:request("ECHO n" .. i .. "\n", line_reader)
			all.done()
		end)
	end
	all.wait()
	deep_eq(results, { "n1", "n2", "n3", "n4", "n5" }, "concurrent requests each get their answer")
	deep_eq(ch:request("MULTI 3\n", line_reader), { "part1", "part2", "part3" }, "multi-part answer")
	raises("bad thing", ch.request, ch, "FAIL bad thing\n", line_reader)
	eq(ch:request("ECHO still\n", line_reader), "still", "usable after a false answer")
	eq(ch:request("ECHO skipped\n"), nil, "request without response")
	eq(ch:request("ECHO after\n", function(sock)
		eq(sock:readline(), "=skipped", "unread answer is still in the stream")
		return line_reader(sock)
	end), "after", "next answer")

	-- a reader raising: the requester gets the message, the connection is dropped
	raises("parse boom", ch.request, ch, "ECHO x\n", function()
		error "parse boom"
	end)
	eq(ch:request("ECHO again\n", line_reader), "again", "reconnected after the reader error")
	eq(skynet.call(one, "lua", "stats").connections, 2, "a second connection")

	-- the peer drops the connection with a request pending
	is_socket_error(catch(ch.request, ch, "DROP\n", line_reader), "dropped mid-request")
	eq(ch:request("ECHO back\n", line_reader), "back", "reconnected after the drop")

	-- the peer closes while nothing is pending
	ch:request "BYE\n"
	tester.wait_log("socket closed by peer :  127.0.0.1 " .. port1)
	eq(ch:request("ECHO idle\n", line_reader), "idle", "reconnected after an idle close")
	eq(skynet.call(one, "lua", "stats").connections, 4, "four connections so far")

	-- changehost moves the channel
	eq(ch:request("WHO\n", line_reader), "one", "first server")
	ch:changehost("127.0.0.1", port2)
	eq(ch:request("WHO\n", line_reader), "two", "after changehost")
	eq(ch.__port, port2, "channel port")

	-- close: the channel refuses further requests
	ch:close()
	raises(nil, ch.request, ch, "ECHO closed\n", line_reader)

	-- session mode
	local cs = sc.channel { host = "127.0.0.1", port = port1, response = session_reader }
	cs:connect(true)
	local answers = {}
	local done = tester.latch(4)
	for i = 1, 4 do
		skynet.fork(function()
			-- the first request is answered last
			answers[i] = cs:request(string.format("S %d %d text%d\n", i, (5 - i) * 5, i), i)
			done.done()
		end)
	end
	done.wait()
	deep_eq(answers, { "text1", "text2", "text3", "text4" }, "answers matched by session")
	deep_eq(cs:request("SM 9 3\n", 9), { "part1", "part2", "part3" }, "multi-part by session")
	raises("nope", cs.request, cs, "SFAIL 10 nope\n", 10)
	cs:request "S 77 0 orphan\n"
	tester.wait_log("socket: unknown session : 77")
	-- a drop fails every waiting session
	local errs = {}
	local failed = tester.latch(2)
	for i = 1, 2 do
		skynet.fork(function()
			errs[i] = catch(cs.request, cs, string.format("S %d 500 late\n", 20 + i), 20 + i)
			failed.done()
		end)
	end
	skynet.yield()
	is_socket_error(catch(cs.request, cs, "DROP\n", 30), "session dropped")
	failed.wait()
	is_socket_error(errs[1], "waiting session 1")
	is_socket_error(errs[2], "waiting session 2")
	eq(cs:request("S 31 0 fresh\n", 31), "fresh", "session channel reconnects")
	cs:close()

	-- auth runs first on every connection
	local ca = sc.channel {
		host = "127.0.0.1",
		port = port2,
		auth = function(self)
			eq(self:request("AUTH secret\n", line_reader), "OK", "auth answer")
		end,
	}
	ca:connect(true)
	eq(ca:request("ECHO authed\n", line_reader), "authed", "request after auth")
	ca:request "BYE\n"
	tester.wait_log("socket closed by peer :  127.0.0.1 " .. port2)
	eq(ca:request("ECHO authed again\n", line_reader), "authed again", "re-auth on reconnect")
	local firsts = skynet.call(two, "lua", "stats").first
	eq(firsts[#firsts], "AUTH secret", "auth was the first line of the new connection")
	eq(firsts[#firsts - 1], "AUTH secret", "and of the previous one")
	ca:close()

	local bad = sc.channel {
		host = "127.0.0.1",
		port = port2,
		auth = function(self)
			assert(self:request("AUTH wrong\n", line_reader))
		end,
	}
	is_socket_error(catch(bad.connect, bad, true), "failed auth")
	tester.wait_log("socket: auth failed")
	tester.wait_log("Connect failed no more backup host 127.0.0.1 " .. port2)

	-- a refused connection, as the db clients see it
	local nowhere = dead_port()
	local cr = sc.channel { host = "127.0.0.1", port = nowhere }
	is_socket_error(catch(cr.connect, cr, true), "refused")
	tester.wait_log("Connect failed Connection refused 127.0.0.1 " .. nowhere)
	is_socket_error(catch(cr.request, cr, "ECHO x\n", line_reader), "request on a refused channel")

	-- backup hosts are tried after the primary
	local cb = sc.channel {
		host = "127.0.0.1",
		port = nowhere,
		backup = { { host = "127.0.0.1", port = port2 } },
	}
	eq(cb:connect(true), true, "connected through the backup")
	tester.wait_log("socket: connect to backup host 127.0.0.1 " .. port2)
	eq(cb.__port, port2, "the channel now points at the backup")
	eq(cb:request("WHO\n", line_reader), "two", "served by the backup")
	cb:close()

	-- a protocol-specific readline
	local cu = sc.channel {
		host = "127.0.0.1",
		port = port1,
		socket_readline = function(sock, sep)
			local line = socket.readline(sock[1], sep)
			if not line then
				error(sc.error)
			end
			return line:upper()
		end,
	}
	eq(cu:request("ECHO quiet\n", line_reader), "QUIET", "custom socket_readline")
	cu:close()

	-- connect without `once` logs the connection
	local cl = sc.channel { host = "127.0.0.1", port = port1 }
	eq(cl:connect(), true, "connect")
	tester.wait_log("socket: connect to 127.0.0.1 " .. port1)
	cl:close()
end)
