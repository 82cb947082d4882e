-- skynet.socket UDP inside one node: socket.udp (bound and unbound), udp_connect
-- (and replacing the callback through it), udp_listen/udp_dial, sendto with a
-- received address and with a hand-built one, the binary address format and
-- udp_address, datagrams for a socket without callback being dropped, netstat UDP
-- entries, resolve, and IPv6 on ::1 when the host has it.
local skynet = require "skynet"
local socket = require "skynet.socket"
local tester = require "tester"
local eq, ok, raises = tester.eq, tester.ok, tester.raises

-- UDP ports cannot be chosen by the system here (we need to know them before a
-- datagram arrives), so try fixed ones until one is free.
local BASE_PORT = 18650

local next_port = BASE_PORT
local function bind_free(make)
	for _ = 1, 100 do
		local port = next_port
		next_port = next_port + 1
		local done, id = pcall(make, port)
		if done then
			return id, port
		end
	end
	error("no free udp port from " .. BASE_PORT)
end

-- Collects strings until `n` have arrived.
local function collector(n)
	local got = {}
	local latch = tester.latch(n)
	local function add(v)
		got[#got + 1] = v
		latch.done()
	end
	return got, add, latch.wait
end

local function sorted(t)
	local copy = table.move(t, 1, #t, 1, {})
	table.sort(copy)
	return copy
end

local function find_stat(id)
	for _, s in ipairs(socket.netstat()) do
		if s.id == id then
			return s
		end
	end
end

tester.run("test_udp", function()
	-- an echo server bound to 127.0.0.1
	local server
	local server_seen, server_add = collector(5)
	local server_port
	server, server_port = bind_free(function(port)
		return socket.udp(function(str, from)
			local ip, p = socket.udp_address(from)
			server_add(string.format("%s %s %d", str, ip, p))
			socket.sendto(server, from, "OK " .. str)
		end, "127.0.0.1", port)
	end)

	-- an unbound client talking to it through udp_connect + write
	local client_seen, client_add, client_wait = collector(5)
	local client = socket.udp(function(str, from)
		local ip, p = socket.udp_address(from)
		client_add(string.format("%s|%s|%d", str, ip, p))
	end)
	socket.udp_connect(client, "127.0.0.1", server_port)
	for i = 1, 5 do
		eq(socket.write(client, "hello " .. i), true, "udp write")
	end
	client_wait()
	local expect = {}
	for i = 1, 5 do
		expect[i] = string.format("OK hello %d|127.0.0.1|%d", i, server_port)
	end
	tester.deep_eq(sorted(client_seen), expect, "client received the echoes")
	-- every request came from the same (client) port
	local ports = {}
	for _, line in ipairs(server_seen) do
		local ip, p = line:match "^hello %d (%S+) (%d+)$"
		eq(ip, "127.0.0.1", "server saw the client address")
		ports[p] = true
	end
	eq(next(ports, next(ports)), nil, "one client port")

	-- netstat: both UDP sockets, the connected one with its peer
	local ss, cs = find_stat(server), find_stat(client)
	ok(ss and cs, "udp sockets in netstat")
	eq(ss.type, "UDP", "udp type")
	eq(ss.address, skynet.self(), "udp owner")
	eq(cs.peer, "127.0.0.1:" .. server_port, "connected udp peer")
	ok(cs.write >= 5 * 7, "client byte count " .. tostring(cs.write))

	-- udp_listen / udp_dial
	local got_listen, add_listen, wait_listen = collector(1)
	local listener
	local listen_port
	listener, listen_port = bind_free(function(port)
		return socket.udp_listen("127.0.0.1", port, function(str, from)
			add_listen(str)
			socket.sendto(listener, from, "ACK " .. str)
		end)
	end)
	local got_dial, add_dial, wait_dial = collector(1)
	local dialer = socket.udp_dial("127.0.0.1", listen_port, function(str, from)
		local ip, p = socket.udp_address(from)
		add_dial(string.format("%s|%s|%d", str, ip, p))
	end)
	socket.write(dialer, "dialed")
	wait_listen()
	wait_dial()
	eq(got_listen[1], "dialed", "listener got the dialed datagram")
	eq(got_dial[1], "ACK dialed|127.0.0.1|" .. listen_port, "dialer got the answer")

	-- a hand-built address: protocol 1 (IPv4), big-endian port, address bytes
	local addr = string.pack(">BI2BBBB", 1, listen_port, 127, 0, 0, 1)
	local ip, p = socket.udp_address(addr)
	eq(ip, "127.0.0.1", "udp_address ip")
	eq(p, listen_port, "udp_address port")
	raises("Invalid udp address", socket.udp_address, "bad")

	-- udp_connect on an existing socket replaces its callback
	local got_new, add_new, wait_new = collector(1)
	socket.udp_connect(client, "127.0.0.1", listen_port, function(str)
		add_new(str)
	end)
	eq(socket.sendto(client, addr, "direct"), true, "sendto")
	wait_new()
	eq(got_new[1], "ACK direct", "the new callback got the answer")

	-- a socket without callback drops what it receives
	local mute, mute_port = bind_free(function(port)
		return socket.udp(nil, "127.0.0.1", port)
	end)
	socket.sendto(dialer, string.pack(">BI2BBBB", 1, mute_port, 127, 0, 0, 1), "lost")
	tester.wait_log("socket: drop udp package from " .. mute)

	-- resolve
	local found = false
	for _, a in ipairs(socket.resolve "127.0.0.1") do
		found = found or a == "127.0.0.1"
	end
	ok(found, "resolve 127.0.0.1")

	-- IPv6, only where the host has ::1
	local has_v6 = pcall(function()
		local probe = socket.udp_listen("::1", BASE_PORT + 200)
		socket.close(probe)
	end)
	if has_v6 then
		local got6, add6, wait6 = collector(1)
		local l6
		local p6
		l6, p6 = bind_free(function(port)
			return socket.udp_listen("::1", port, function(str, from)
				socket.sendto(l6, from, "v6 " .. str)
			end)
		end)
		local d6 = socket.udp_dial("::1", p6, function(str, from)
			local ip6, port6 = socket.udp_address(from)
			add6(string.format("%s|%s|%d", str, ip6, port6))
		end)
		socket.write(d6, "x")
		wait6()
		eq(got6[1], "v6 x|::1|" .. p6, "ipv6 round trip")
		socket.close(d6)
		socket.close(l6)
	else
		skynet.error("test_udp: no ::1 on this host, IPv6 part skipped")
	end

	for _, id in ipairs { server, client, listener, dialer, mute } do
		socket.close(id)
		ok(socket.invalid(id), "closed udp socket")
	end
end)
