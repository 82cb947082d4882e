-- service/debug_console driven over TCP like an operator's script would: the
-- greeting, "<CMD OK>"/"<CMD Error>" framing, the sorted key<TAB>value listing and
-- "k:v" table cells, and the commands help, list, start, log, snax, call, ping,
-- info, task, uniqtask, killtask, dbgcmd, mem, stat, gc, netstat, getenv/setenv,
-- kill, exit, inject, logon/logoff, signal, cmem, jmem, trace, service,
-- profactive, dumpheap, clearcache, an unknown command, and the HTTP GET/POST forms.
local skynet = require "skynet"
local socket = require "skynet.socket"
local tester = require "tester"
local eq, ok, deep_eq = tester.eq, tester.ok, tester.deep_eq

local function open_console(port)
	local fd = assert(socket.open("127.0.0.1", port))
	eq(socket.readline(fd), "Welcome to skynet console", "greeting")
	return fd
end

-- Runs one command line; returns the output lines and the final status line.
local function command(fd, line)
	socket.write(fd, line .. "\n")
	local out = {}
	while true do
		local l = socket.readline(fd)
		ok(l, "console connection closed during " .. line)
		if l == "<CMD OK>" or l == "<CMD Error>" then
			return out, l
		end
		out[#out + 1] = l
	end
end

-- Like command, requiring "<CMD OK>".
local function run_ok(fd, line)
	local out, status = command(fd, line)
	eq(status, "<CMD OK>", line .. " status (output: " .. table.concat(out, " | ") .. ")")
	return out
end

local function find_line(lines, pat)
	for _, l in ipairs(lines) do
		if l:match(pat) then
			return l
		end
	end
end

local function has_line(lines, pat, what)
	return ok(find_line(lines, pat), (what or pat) .. " in " .. table.concat(lines, " | "))
end

local function is_listed(addr)
	return skynet.call(".launcher", "lua", "LIST")[skynet.address(addr)] ~= nil
end

tester.run("test_debug_console", function()
	skynet.info_func(function(...)
		return { args = table.concat({ ... }, ","), answer = 42 }
	end)
	local me = skynet.address(skynet.self())

	local console = skynet.newservice("debug_console", "127.0.0.1", 0)
	local started = tester.wait_log(string.format("[%s] Start debug console at 127.0.0.1:", skynet.address(console)))
	local port = tonumber(started:match "127%.0%.0%.1:(%d+)$")
	ok(port and port > 0, "console port from " .. started)

	local fd = open_console(port)
	tester.wait_log(string.format("[%s] 127.0.0.1:", skynet.address(console)))

	-- help: every command, sorted, key<TAB>description
	local help = run_ok(fd, "help")
	eq(#help, 32, "help entries")
	eq(help[1], "call\tcall address ...", "first help line")
	has_line(help, "^netstat\tnetstat : show netstat$")
	has_line(help, "^help\tThis help message$")
	local keys = {}
	for i, l in ipairs(help) do
		keys[i] = l:match "^(%S+)\t"
	end
	local sorted = table.move(keys, 1, #keys, 1, {})
	table.sort(sorted)
	deep_eq(keys, sorted, "help sorted by key")

	-- an unknown command: the message, an empty line, the error status
	local out, status = command(fd, "nosuchcommand x")
	deep_eq(out, { "Invalid command, type help for command list", "" }, "unknown command output")
	eq(status, "<CMD Error>", "unknown command status")

	-- list shows this service with its command line
	has_line(run_ok(fd, "list"), "^" .. me .. "\tsnlua test_debug_console$", "this service listed")

	-- start / call / ping / kill
	out = run_ok(fd, "start svc_echo hi")
	eq(#out, 1, "start output")
	local echo_text = out[1]:match "^(:%x+)\tsvc_echo$"
	ok(echo_text, "start output " .. out[1])
	local echo = tonumber(echo_text:sub(2), 16)
	deep_eq(table.pack(skynet.call(echo, "lua", "args")), { "hi", n = 1 }, "started with its argument")
	deep_eq(run_ok(fd, "call " .. echo_text .. ' "echo", 1, "two", ({x=1}).x'),
		{ "1\t1", "2\ttwo", "3\t1", "n\t3" }, "call output")
	out, status = command(fd, "call " .. echo_text .. " (")
	eq(status, "<CMD Error>", "call with bad arguments")
	out = run_ok(fd, "ping " .. echo_text)
	ok(#out == 1 and out[1]:match "^%d+$", "ping prints the round trip " .. tostring(out[1]))
	-- bare hex works as an address too
	out = run_ok(fd, "ping " .. string.format("%x", echo))
	ok(#out == 1, "ping with a bare hex address")
	-- (the text after the address is the launcher's business)
	out = run_ok(fd, "kill " .. echo_text)
	ok(#out == 1 and out[1]:sub(1, #echo_text + 1) == echo_text .. "\t", "kill output " .. tostring(out[1]))
	ok(not is_listed(echo), "killed service gone")

	eq(run_ok(fd, "start nosuch_service_here")[1], "Failed", "start of a missing service")

	-- log: like start, with the message log on
	out = run_ok(fd, "log svc_echo logged")
	local logged_text = out[1] and out[1]:match "^(:%x+)\tsvc_echo$"
	ok(logged_text, "log output " .. tostring(out[1]))
	run_ok(fd, "logoff " .. logged_text)
	run_ok(fd, "logon " .. logged_text)
	run_ok(fd, "logoff " .. logged_text)

	-- exit asks the service to quit by itself
	run_ok(fd, "exit " .. logged_text)
	local logged = tonumber(logged_text:sub(2), 16)
	local tries = 0
	while is_listed(logged) do
		tries = tries + 1
		ok(tries < 500, "exited service still listed")
		skynet.sleep(1)
	end

	-- snax
	out = run_ok(fd, "snax snax_counter")
	ok(out[1] and out[1]:match "^:%x+\tsnax_counter$", "snax output " .. tostring(out[1]))

	-- debug-protocol commands against this service
	deep_eq(run_ok(fd, "info " .. me .. " a b"), { "answer\t42", "args\ta,b" }, "info output")
	run_ok(fd, "task " .. me)
	run_ok(fd, "uniqtask " .. me)
	deep_eq(run_ok(fd, "killtask " .. me .. " nosuchthread"), { "Not found" }, "killtask output")
	run_ok(fd, "dbgcmd " .. me .. " PING")
	run_ok(fd, "trace " .. me .. " on")
	run_ok(fd, "trace " .. me .. " off")
	-- signal interrupts whatever Lua the target runs next: use a throwaway service
	local victim = skynet.newservice("svc_echo", "victim")
	run_ok(fd, "signal " .. skynet.address(victim))
	run_ok(fd, "signal " .. skynet.address(victim) .. " 1")
	skynet.kill(victim)

	-- inject
	local f = assert(io.open("inject_test.lua", "w"))
	f:write 'print("injected", 6 * 7)\n'
	f:close()
	deep_eq(run_ok(fd, "inject " .. me .. " inject_test.lua"), { "injected\t42" }, "inject output")
	os.remove "inject_test.lua"
	deep_eq(run_ok(fd, "inject " .. me .. " no_such_file.lua"), { "Can't open no_such_file.lua" },
		"inject of a missing file")

	-- survey commands: one line per service
	has_line(run_ok(fd, "mem"), "^" .. me .. "\t%d+%.%d%d Kb %(snlua test_debug_console%)$", "mem line")
	has_line(run_ok(fd, "mem 0"), "^" .. me .. "\t", "mem without time limit")
	has_line(run_ok(fd, "stat"), "^" .. me .. "\tcpu:[%d.e-]+\tmessage:%d+\tmqlen:%d+\ttask:%d+$", "stat line")
	has_line(run_ok(fd, "gc"), "^" .. me .. "\t%d+%.%d%d Kb", "gc line")

	-- netstat: the console's listening socket and our connection to it
	out = run_ok(fd, "netstat")
	has_line(out, "^%d+\taccept:%d+\taddress:" .. skynet.address(console) .. "\tid:%d+\trtime:[%d.]+s\tsock:127%.0%.0%.1:" .. port .. "\ttype:LISTEN$",
		"listening socket line")
	has_line(out, "\tpeer:127%.0%.0%.1:" .. port .. "\t.*type:TCP", "our connection line")

	-- environment
	deep_eq(run_ok(fd, "getenv thread"), { "thread\t" .. skynet.getenv "thread" }, "getenv")
	run_ok(fd, "setenv console_test_key some_value")
	eq(skynet.getenv "console_test_key", "some_value", "setenv")
	deep_eq(run_ok(fd, "getenv console_test_key"), { "console_test_key\tsome_value" }, "getenv after setenv")

	-- memory and misc
	local cmem = run_ok(fd, "cmem")
	has_line(cmem, "^total\t%d+$")
	has_line(cmem, "^block\t%d+$")
	run_ok(fd, "jmem")
	has_line(run_ok(fd, "profactive"), "^heap profilling is %a+$", "profactive")
	run_ok(fd, "dumpheap")
	run_ok(fd, "clearcache")
	run_ok(fd, "service")

	-- a failing command reports its error
	out, status = command(fd, "kill .nosuchname")
	eq(status, "<CMD Error>", "bad address")
	ok(out[1] and out[1]:find("Not a valid name", 1, true), "error text " .. tostring(out[1]))

	socket.close(fd)
	tester.wait_log(" disconnect")

	-- HTTP forms: one command, plain output, then the console closes
	local h = open_console(port)
	socket.write(h, "GET /getenv/thread HTTP/1.1\r\nHost: localhost\r\n\r\n")
	eq(socket.readall(h), "thread\t" .. skynet.getenv "thread" .. "\n<CMD OK>\n", "GET output")
	socket.close(h)
	h = open_console(port)
	local body = "getenv console_test_key"
	socket.write(h, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
	eq(socket.readall(h), "console_test_key\tsome_value\n<CMD OK>\n", "POST output")
	socket.close(h)
end)
